package cli

import (
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// newACLCmd manages ACLs as kafka-acls.sh does (CreateAcls, DescribeAcls,
// DeleteAcls): against Strom or any Kafka cluster with an authorizer.
func newACLCmd() *cobra.Command {
	conn := &connFlags{}
	cmd := &cobra.Command{
		Use:   "acl",
		Short: "Add, list and remove ACLs (who may do what to which topic, group, cluster)",
		Example: `  strom acl add --allow-principal User:alice --operation Read --operation Describe --topic orders
  strom acl add --allow-principal User:alice --operation Read --group app- --resource-pattern-type prefixed
  strom acl list --topic orders
  strom acl remove --allow-principal User:alice --topic orders`,
	}
	conn.register(cmd.PersistentFlags())
	cmd.AddCommand(aclAddCmd(conn), aclListCmd(conn), aclRemoveCmd(conn))
	return kafkaCommand(cmd)
}

// aclFlags are kafka-acls.sh's resource and principal options.
type aclFlags struct {
	allow, deny, allowHosts, denyHosts []string
	topics, groups, txnIDs, ops        []string
	cluster                            bool
	pattern                            string
}

func (f *aclFlags) register(fs *pflag.FlagSet, listing bool) {
	fs.StringArrayVar(&f.allow, "allow-principal", nil, "principal allowed, as User:alice (repeatable)")
	fs.StringArrayVar(&f.deny, "deny-principal", nil, "principal denied (repeatable)")
	fs.StringArrayVar(&f.allowHosts, "allow-host", nil, "host the allow applies to (default *)")
	fs.StringArrayVar(&f.denyHosts, "deny-host", nil, "host the deny applies to (default *)")
	fs.StringArrayVar(&f.topics, "topic", nil, "topic (repeatable; * for all)")
	fs.StringArrayVar(&f.groups, "group", nil, "consumer group (repeatable; * for all)")
	fs.StringArrayVar(&f.txnIDs, "transactional-id", nil, "transactional id (repeatable)")
	fs.BoolVar(&f.cluster, "cluster", false, "the cluster resource")
	fs.StringArrayVar(&f.ops, "operation", nil, "Read, Write, Create, Delete, Alter, Describe, ClusterAction, DescribeConfigs, AlterConfigs, IdempotentWrite or All (repeatable)")
	def, doc := "literal", "literal or prefixed"
	if listing {
		def, doc = "any", "literal, prefixed, match (what applies to the names given) or any"
	}
	fs.StringVar(&f.pattern, "resource-pattern-type", def, doc)
}

// builder turns the flags into kadm's builder; anyOp is the default
// operation when none is given (none when adding).
func (f *aclFlags) builder(listing bool) (*kadm.ACLBuilder, error) {
	b := kadm.NewACLs().MaybeTopics(f.topics...).MaybeGroups(f.groups...).MaybeTransactionalIDs(f.txnIDs...).MaybeClusters(f.cluster)
	if listing && len(f.topics)+len(f.groups)+len(f.txnIDs) == 0 && !f.cluster {
		b.AnyResource()
	}
	switch {
	case !listing:
		b.MaybeAllow(f.allow...).MaybeDeny(f.deny...).MaybeAllowHosts(f.allowHosts...).MaybeDenyHosts(f.denyHosts...)
	case len(f.allow)+len(f.deny) == 0: // any principal, either permission
		b.Allow().AllowHosts(f.allowHosts...).Deny().DenyHosts(f.denyHosts...)
	default: // kadm's filters need hosts with principals (none: any)
		if len(f.allow) > 0 {
			b.Allow(f.allow...).AllowHosts(f.allowHosts...)
		}
		if len(f.deny) > 0 {
			b.Deny(f.deny...).DenyHosts(f.denyHosts...)
		}
	}
	var ops []kadm.ACLOperation
	for _, o := range f.ops {
		op, err := kmsg.ParseACLOperation(strings.ToLower(o))
		if err != nil {
			return nil, usageErr("--operation %q: %v", o, err)
		}
		ops = append(ops, op)
	}
	if len(ops) == 0 && listing {
		ops = []kadm.ACLOperation{kadm.OpAny}
	}
	b.Operations(ops...)
	pattern, err := kmsg.ParseACLResourcePatternType(strings.ToLower(f.pattern))
	if err != nil {
		return nil, usageErr("--resource-pattern-type %q: %v", f.pattern, err)
	}
	b.ResourcePatternType(pattern)
	return b, nil
}

func aclAddCmd(conn *connFlags) *cobra.Command {
	f := &aclFlags{}
	cmd := &cobra.Command{
		Use:   "add",
		Short: "Add ACLs: every principal x resource x operation given",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := f.builder(false)
			if err != nil {
				return err
			}
			if err := b.ValidateCreate(); err != nil {
				return usageErr("%v", err)
			}
			ctx, adm, done, err := conn.adminFor(cmd)
			if err != nil {
				return err
			}
			defer done()
			res, err := adm.CreateACLs(ctx, b)
			if err != nil {
				return conn.explain(err)
			}
			for _, r := range res {
				if r.Err != nil {
					return fmt.Errorf("%s %s on %s %s: %w", r.Permission, r.Principal, r.Type, r.Name, conn.explain(r.Err))
				}
				fmt.Fprintf(cmd.OutOrStdout(), "added: %s %s %s on %s %s:%s from %s\n", permName(r.Permission), r.Principal, opName(r.Operation),
					strings.ToLower(r.Type.String()), strings.ToLower(r.Pattern.String()), r.Name, r.Host)
			}
			return nil
		},
	}
	f.register(cmd.Flags(), false)
	return cmd
}

type aclEntry struct {
	Principal    string `json:"principal"`
	Host         string `json:"host"`
	Permission   string `json:"permission"`
	Operation    string `json:"operation"`
	ResourceType string `json:"resource_type"`
	Pattern      string `json:"pattern"`
	Resource     string `json:"resource"`
}

func entryOf(d kadm.DescribedACL) aclEntry {
	return aclEntry{Principal: d.Principal, Host: d.Host, Permission: permName(d.Permission), Operation: opName(d.Operation),
		ResourceType: strings.ToLower(d.Type.String()), Pattern: strings.ToLower(d.Pattern.String()), Resource: d.Name}
}

func permName(p kmsg.ACLPermissionType) string { return strings.ToLower(p.String()) }
func opName(o kadm.ACLOperation) string        { return strings.ToLower(o.String()) }

func printACLs(cmd *cobra.Command, output string, entries []aclEntry) error {
	sort.Slice(entries, func(i, j int) bool {
		a, b := entries[i], entries[j]
		return a.ResourceType+a.Resource+a.Principal+a.Operation < b.ResourceType+b.Resource+b.Principal+b.Operation
	})
	if output == outJSON {
		return writeJSON(cmd.OutOrStdout(), entries)
	}
	t := newTable("RESOURCE", "PATTERN", "PRINCIPAL", "HOST", "OPERATION", "PERMISSION")
	for _, e := range entries {
		t.add(e.ResourceType+":"+e.Resource, e.Pattern, e.Principal, e.Host, e.Operation, e.Permission)
	}
	return t.write(cmd.OutOrStdout())
}

func aclListCmd(conn *connFlags) *cobra.Command {
	f := &aclFlags{}
	var output string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List ACLs (all, or those the flags select)",
		Long: `List ACLs. With no flag, every ACL; --topic, --group, --allow-principal, ...
narrow the list, as kafka-acls.sh --list does.

JSON: [{"principal","host","permission","operation","resource_type","pattern","resource"}]`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			b, err := f.builder(true)
			if err != nil {
				return err
			}
			ctx, adm, done, err := conn.adminFor(cmd)
			if err != nil {
				return err
			}
			defer done()
			res, err := adm.DescribeACLs(ctx, b)
			if err != nil {
				return conn.explain(err)
			}
			entries := []aclEntry{}
			seen := map[aclEntry]bool{}
			for _, r := range res {
				if r.Err != nil {
					return conn.explain(r.Err)
				}
				for _, d := range r.Described {
					if e := entryOf(d); !seen[e] {
						seen[e] = true
						entries = append(entries, e)
					}
				}
			}
			return printACLs(cmd, output, entries)
		},
	}
	f.register(cmd.Flags(), true)
	addOutputFlag(cmd, &output)
	return cmd
}

func aclRemoveCmd(conn *connFlags) *cobra.Command {
	f := &aclFlags{}
	cmd := &cobra.Command{
		Use:   "remove",
		Short: "Remove the ACLs the flags select (at least a resource or a principal)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(f.topics)+len(f.groups)+len(f.txnIDs)+len(f.allow)+len(f.deny) == 0 && !f.cluster {
				return usageErr("name a resource (--topic, --group, --transactional-id, --cluster) or a principal: remove never removes every ACL")
			}
			b, err := f.builder(true)
			if err != nil {
				return err
			}
			ctx, adm, done, err := conn.adminFor(cmd)
			if err != nil {
				return err
			}
			defer done()
			res, err := adm.DeleteACLs(ctx, b)
			if err != nil {
				return conn.explain(err)
			}
			n := 0
			for _, r := range res {
				if r.Err != nil {
					return conn.explain(r.Err)
				}
				for _, d := range r.Deleted {
					if d.Err != nil {
						return conn.explain(d.Err)
					}
					n++
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed %s\n", plural(n, "ACL"))
			return nil
		},
	}
	f.register(cmd.Flags(), true)
	return cmd
}
