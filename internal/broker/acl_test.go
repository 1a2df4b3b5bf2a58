package broker

import (
	"context"
	"crypto/x509/pkix"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/stromhq/strom/internal/metadata"
	"github.com/stromhq/strom/internal/testutil"
)

// aclBroker: SASL_PLAINTEXT and SSL (mTLS) listeners, the
// StandardAuthorizer on, User:admin a super user, and users alice and bob;
// extra props, if given, are added to the broker's.
func aclBroker(t *testing.T, extra ...map[string]string) (*secured, func(user string) *kgo.Client) {
	t.Helper()
	s := &secured{ca: testutil.NewCA(t, "acl CA"), dir: t.TempDir()}
	s.server = s.ca.Issue(t, testutil.LeafOptions{Subject: pkix.Name{CommonName: "localhost"}, Server: true})
	dir := t.TempDir()
	args := []string{}
	for _, u := range []string{"admin", "alice", "bob"} {
		args = append(args, "SCRAM-SHA-512=[name="+u+",password="+u+"-pw]")
	}
	if _, err := AddScram(dir, args); err != nil {
		t.Fatal(err)
	}
	props := map[string]string{
		"ssl.keystore.location":            testutil.WriteFile(t, s.dir, "server.pem", s.server.CertPEM, s.server.KeyPEM),
		"ssl.truststore.location":          testutil.WriteFile(t, s.dir, "ca.pem", s.ca.PEM),
		"ssl.client.auth":                  "required",
		"ssl.principal.mapping.rules":      "RULE:^CN=(.*?),O=strom$/$1/L,DEFAULT",
		"sasl.enabled.mechanisms":          "SCRAM-SHA-512",
		"authorizer.class.name":            "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
		"super.users":                      "User:admin",
		"group.initial.rebalance.delay.ms": "0",
	}
	for _, e := range extra {
		maps.Copy(props, e)
	}
	var err error
	s.cfg = Config{DataDir: dir, HTTPAddr: "-", Logger: slog.New(slog.DiscardHandler), Props: props,
		Listeners: []metadata.Listener{
			{Name: "SASL_PLAINTEXT", Protocol: "SASL_PLAINTEXT", Addr: "127.0.0.1:0"},
			{Name: "SSL", Protocol: "SSL", Addr: "127.0.0.1:0"},
		},
	}
	s.b, err = Start(s.cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stop(t, s.b) })
	client := func(user string) *kgo.Client {
		cl, err := kgo.NewClient(kgo.SeedBrokers(s.addr("SASL_PLAINTEXT")), kgo.RequestRetries(0),
			kgo.SASL(scram.Auth{User: user, Pass: user + "-pw"}.AsSha512Mechanism()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		return cl
	}
	return s, client
}

// TestACLsPerAPI: with the StandardAuthorizer on, each API checks what
// Kafka checks and answers Kafka's codes; Metadata and ListGroups show
// only what the principal may describe; auto-creation needs CREATE.
func TestACLsPerAPI(t *testing.T) {
	s, client := aclBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	admin, alice, bob := client("admin"), client("alice"), client("bob")
	adm := kadm.NewClient(admin)
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "alice-t"); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "secret"); err != nil {
		t.Fatal(err)
	}
	for _, acls := range []*kadm.ACLBuilder{
		kadm.NewACLs().Allow("User:alice").ResourcePatternType(kadm.ACLPatternPrefixed).Topics("alice-").Operations(kadm.OpRead, kadm.OpWrite),
		kadm.NewACLs().Allow("User:alice").ResourcePatternType(kadm.ACLPatternPrefixed).Groups("alice-").Operations(kadm.OpRead),
	} {
		res, err := adm.CreateACLs(ctx, acls)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			if r.Err != nil {
				t.Fatalf("create acl: %v %s", r.Err, r.ErrMessage)
			}
		}
	}
	carolACL := kadm.NewACLs().Allow("User:carol").Topics("carol-t").Operations(kadm.OpWrite, kadm.OpCreate)
	if _, err := adm.CreateACLs(ctx, carolACL); err != nil {
		t.Fatal(err)
	}
	// Listed: alice's 2 on topics, 1 on groups, carol's 2.
	dreq := kmsg.NewPtrDescribeACLsRequest()
	dreq.ResourceType, dreq.ResourcePatternType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny
	dreq.Operation, dreq.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
	described, err := dreq.RequestWith(ctx, admin)
	if err != nil || described.ErrorCode != 0 {
		t.Fatalf("describe acls: %v %+v", err, described)
	}
	n := 0
	for _, r := range described.Resources {
		n += len(r.ACLs)
	}
	if len(described.Resources) != 3 || n != 5 {
		t.Fatalf("described %d resources, %d ACLs; want 3, 5: %+v", len(described.Resources), n, described.Resources)
	}

	produce := func(user, topic string) int16 {
		cl, err := kgo.NewClient(kgo.SeedBrokers(s.addr("SASL_PLAINTEXT")), kgo.RecordRetries(0), kgo.RetryTimeout(2*time.Second),
			kgo.SASL(scram.Auth{User: user, Pass: user + "-pw"}.AsSha512Mechanism()))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		return errCode(cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("v")}).FirstErr())
	}
	metaTopics := func(cl *kgo.Client, names ...string) map[string]int16 {
		req := kmsg.NewPtrMetadataRequest()
		if names != nil {
			req.AllowAutoTopicCreation = true
			for _, n := range names {
				rt := kmsg.NewMetadataRequestTopic()
				rt.Topic = kmsg.StringPtr(n)
				req.Topics = append(req.Topics, rt)
			}
		}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]int16{}
		for _, t := range resp.Topics {
			out[*t.Topic] = t.ErrorCode
		}
		return out
	}

	type row struct {
		name string
		got  func() int16
		want int16
	}
	taf, gaf, caf := kerr.TopicAuthorizationFailed.Code, kerr.GroupAuthorizationFailed.Code, kerr.ClusterAuthorizationFailed.Code
	rows := []row{
		{"alice produces to her topic", func() int16 { return produce("alice", "alice-t") }, 0},
		{"alice produces to another", func() int16 { return produce("alice", "secret") }, taf},
		{"bob produces to alice's", func() int16 { return produce("bob", "alice-t") }, taf},
		{"admin (super user) produces anywhere", func() int16 { return produce("admin", "secret") }, 0},
		{"alice names a topic she may not describe", func() int16 { return metaTopics(alice, "secret")["secret"] }, taf},
		{"alice auto-creates without CREATE", func() int16 { return metaTopics(alice, "alice-new")["alice-new"] }, kerr.UnknownTopicOrPartition.Code},
		{"alice creates a topic", func() int16 {
			req := kmsg.NewPtrCreateTopicsRequest()
			rt := kmsg.NewCreateTopicsRequestTopic()
			rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "alice-x", 1, 1
			req.Topics = append(req.Topics, rt)
			resp, err := req.RequestWith(ctx, alice)
			if err != nil {
				t.Fatal(err)
			}
			return resp.Topics[0].ErrorCode
		}, taf},
		{"alice deletes her topic without DELETE", func() int16 {
			req := kmsg.NewPtrDeleteTopicsRequest()
			req.TopicNames = []string{"alice-t"}
			rt := kmsg.NewDeleteTopicsRequestTopic()
			rt.Topic = kmsg.StringPtr("alice-t")
			req.Topics = append(req.Topics, rt)
			resp, err := req.RequestWith(ctx, alice)
			if err != nil {
				t.Fatal(err)
			}
			return resp.Topics[0].ErrorCode
		}, taf},
		{"bob joins alice's group", func() int16 {
			req := kmsg.NewPtrJoinGroupRequest()
			req.Group, req.ProtocolType, req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = "alice-g", "consumer", 10000, 10000
			req.Protocols = append(req.Protocols, kmsg.JoinGroupRequestProtocol{Name: "range"})
			resp, err := req.RequestWith(ctx, bob)
			if err != nil { // kgo finds the coordinator first
				return errCode(err)
			}
			return resp.ErrorCode
		}, gaf},
		{"bob finds alice's group coordinator", func() int16 {
			req := kmsg.NewPtrFindCoordinatorRequest()
			req.CoordinatorKey = "alice-g"
			req.CoordinatorKeys = []string{"alice-g"}
			resp, err := req.RequestWith(ctx, bob)
			if err != nil { // kgo finds the coordinator first
				return errCode(err)
			}
			if len(resp.Coordinators) > 0 {
				return resp.Coordinators[0].ErrorCode
			}
			return resp.ErrorCode
		}, gaf},
		{"alice reads broker configs", func() int16 {
			req := kmsg.NewPtrDescribeConfigsRequest()
			rr := kmsg.NewDescribeConfigsRequestResource()
			rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeBroker, "0"
			req.Resources = append(req.Resources, rr)
			resp, err := req.RequestWith(ctx, alice)
			if err != nil {
				t.Fatal(err)
			}
			return resp.Resources[0].ErrorCode
		}, caf},
		{"alice creates an ACL", func() int16 {
			req := kmsg.NewPtrCreateACLsRequest()
			c := kmsg.NewCreateACLsRequestCreation()
			c.ResourceType, c.ResourceName, c.ResourcePatternType = kmsg.ACLResourceTypeTopic, "secret", kmsg.ACLResourcePatternTypeLiteral
			c.Principal, c.Host, c.Operation, c.PermissionType = "User:alice", "*", kmsg.ACLOperationRead, kmsg.ACLPermissionTypeAllow
			req.Creations = append(req.Creations, c)
			resp, err := req.RequestWith(ctx, alice)
			if err != nil {
				t.Fatal(err)
			}
			return resp.Results[0].ErrorCode
		}, caf},
		{"alice changes a password", func() int16 {
			req := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
			u := kmsg.NewAlterUserSCRAMCredentialsRequestUpsertion()
			u.Name, u.Mechanism, u.Iterations, u.Salt, u.SaltedPassword = "admin", 2, 4096, []byte("s"), []byte("p")
			req.Upsertions = append(req.Upsertions, u)
			resp, err := req.RequestWith(ctx, alice)
			if err != nil {
				t.Fatal(err)
			}
			return resp.Results[0].ErrorCode
		}, caf},
		{"bob inits an idempotent producer", func() int16 {
			resp, err := kmsg.NewPtrInitProducerIDRequest().RequestWith(ctx, bob)
			if err != nil {
				t.Fatal(err)
			}
			return resp.ErrorCode
		}, caf},
		{"alice fetches a topic she may not read", func() int16 {
			req := kmsg.NewPtrFetchRequest()
			req.SetVersion(12)
			req.MaxWaitMillis, req.MaxBytes = 10, 1<<20
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic = "secret"
			if st, ok := s.b.Cluster().Topic("secret"); ok {
				rt.TopicID = st.ID // kgo sends v13+: topics by id
			}
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.PartitionMaxBytes = 1 << 20
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			resp, err := req.RequestWith(ctx, alice)
			if err != nil {
				return errCode(err)
			}
			return resp.Topics[0].Partitions[0].ErrorCode
		}, taf},
		{"alice lists offsets of a topic she may not describe", func() int16 {
			req := kmsg.NewPtrListOffsetsRequest()
			rt := kmsg.NewListOffsetsRequestTopic()
			rt.Topic = "secret"
			rt.Partitions = append(rt.Partitions, kmsg.NewListOffsetsRequestTopicPartition())
			req.Topics = append(req.Topics, rt)
			resp, err := req.RequestWith(ctx, alice)
			if err != nil {
				return errCode(err)
			}
			return resp.Topics[0].Partitions[0].ErrorCode
		}, taf},
		{"alice deletes records without DELETE", func() int16 {
			req := kmsg.NewPtrDeleteRecordsRequest()
			rt := kmsg.NewDeleteRecordsRequestTopic()
			rt.Topic = "alice-t"
			rp := kmsg.NewDeleteRecordsRequestTopicPartition()
			rp.Offset = 0
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			resp, err := req.RequestWith(ctx, alice)
			if err != nil {
				return errCode(err)
			}
			return resp.Topics[0].Partitions[0].ErrorCode
		}, taf},
		{"alice adds partitions without ALTER", func() int16 {
			req := kmsg.NewPtrCreatePartitionsRequest()
			rt := kmsg.NewCreatePartitionsRequestTopic()
			rt.Topic, rt.Count = "alice-t", 2
			req.Topics = append(req.Topics, rt)
			resp, err := req.RequestWith(ctx, alice)
			if err != nil {
				t.Fatal(err)
			}
			return resp.Topics[0].ErrorCode
		}, taf},
		{"alice reads her topic's configs without DESCRIBE_CONFIGS", func() int16 {
			req := kmsg.NewPtrDescribeConfigsRequest()
			rr := kmsg.NewDescribeConfigsRequestResource()
			rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, "alice-t"
			req.Resources = append(req.Resources, rr)
			resp, err := req.RequestWith(ctx, alice)
			if err != nil {
				t.Fatal(err)
			}
			return resp.Resources[0].ErrorCode
		}, taf},
		{"alice alters her topic's configs without ALTER_CONFIGS", func() int16 {
			req := kmsg.NewPtrIncrementalAlterConfigsRequest()
			rr := kmsg.NewIncrementalAlterConfigsRequestResource()
			rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, "alice-t"
			c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
			c.Name, c.Value = "retention.ms", kmsg.StringPtr("1000")
			rr.Configs = append(rr.Configs, c)
			req.Resources = append(req.Resources, rr)
			resp, err := req.RequestWith(ctx, alice)
			if err != nil {
				t.Fatal(err)
			}
			return resp.Resources[0].ErrorCode
		}, taf},
		{"alice describes log dirs", func() int16 {
			// To the broker itself: kgo merges sharded answers and
			// drops their top-level code.
			raw, err := alice.Broker(0).Request(ctx, kmsg.NewPtrDescribeLogDirsRequest())
			if err != nil {
				return errCode(err)
			}
			return raw.(*kmsg.DescribeLogDirsResponse).ErrorCode
		}, caf},
		{"alice elects leaders", func() int16 {
			req := kmsg.NewPtrElectLeadersRequest()
			req.Topics = []kmsg.ElectLeadersRequestTopic{{Topic: "alice-t", Partitions: []int32{0}}}
			raw, err := alice.Broker(0).Request(ctx, req)
			if err != nil {
				return errCode(err)
			}
			resp := raw.(*kmsg.ElectLeadersResponse)
			if resp.ErrorCode != resp.Topics[0].Partitions[0].ErrorCode {
				return -1
			}
			return resp.ErrorCode
		}, caf},
		{"alice reassigns partitions", func() int16 {
			req := kmsg.NewPtrAlterPartitionAssignmentsRequest()
			req.Topics = []kmsg.AlterPartitionAssignmentsRequestTopic{{Topic: "alice-t",
				Partitions: []kmsg.AlterPartitionAssignmentsRequestTopicPartition{{Partition: 0}}}}
			raw, err := alice.Broker(0).Request(ctx, req)
			if err != nil {
				return errCode(err)
			}
			resp := raw.(*kmsg.AlterPartitionAssignmentsResponse)
			if resp.ErrorCode != resp.Topics[0].Partitions[0].ErrorCode {
				return -1
			}
			return resp.ErrorCode
		}, caf},
		{"alice lists reassignments", func() int16 {
			raw, err := alice.Broker(0).Request(ctx, kmsg.NewPtrListPartitionReassignmentsRequest())
			if err != nil {
				return errCode(err)
			}
			return raw.(*kmsg.ListPartitionReassignmentsResponse).ErrorCode
		}, caf},
		{"bob describes alice's group", func() int16 {
			req := kmsg.NewPtrDescribeGroupsRequest()
			req.Groups = []string{"alice-g"}
			resp, err := req.RequestWith(ctx, bob)
			if err != nil {
				return errCode(err)
			}
			return resp.Groups[0].ErrorCode
		}, gaf},
		{"bob deletes alice's group", func() int16 {
			req := kmsg.NewPtrDeleteGroupsRequest()
			req.Groups = []string{"alice-g"}
			resp, err := req.RequestWith(ctx, bob)
			if err != nil {
				return errCode(err)
			}
			return resp.Groups[0].ErrorCode
		}, gaf},
		{"alice inits one (WRITE on a topic)", func() int16 {
			resp, err := kmsg.NewPtrInitProducerIDRequest().RequestWith(ctx, alice)
			if err != nil {
				t.Fatal(err)
			}
			return resp.ErrorCode
		}, 0},
	}
	for _, r := range rows {
		if got := r.got(); got != r.want {
			t.Errorf("%s: code %d (%v), want %d (%v)", r.name, got, kerr.ErrorForCode(got), r.want, kerr.ErrorForCode(r.want))
		}
	}
	if got := metaTopics(alice); len(got) != 1 || got["alice-t"] != 0 {
		t.Errorf("alice's metadata lists %v, want only alice-t", got)
	}
	// KIP-430: alice's authorized operations on her topic are READ,
	// WRITE and the DESCRIBE they imply; on the cluster none
	// (DescribeCluster).
	mreq := kmsg.NewPtrMetadataRequest()
	mreq.IncludeTopicAuthorizedOperations = true
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr("alice-t")
	mreq.Topics = append(mreq.Topics, mt)
	mresp, err := mreq.RequestWith(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	if ops := mresp.Topics[0].AuthorizedOperations; ops != 1<<3|1<<4|1<<8 {
		t.Errorf("alice's authorized operations on alice-t: %b, want 100011000", ops)
	}
	dc := kmsg.NewPtrDescribeClusterRequest()
	dc.IncludeClusterAuthorizedOperations = true
	dcr, err := dc.RequestWith(ctx, alice)
	if err != nil || dcr.ClusterAuthorizedOperations != 0 {
		t.Errorf("alice's cluster authorized operations: %b %v, want 0", dcr.ClusterAuthorizedOperations, err)
	}
	if got := metaTopics(bob); len(got) != 0 {
		t.Errorf("bob's metadata lists %v, want nothing", got)
	}
	if _, ok := s.b.Cluster().Topic("alice-new"); ok {
		t.Error("auto-created without CREATE")
	}

	// alice consumes in her group; bob's ListGroups does not show it.
	cons, err := kgo.NewClient(kgo.SeedBrokers(s.addr("SASL_PLAINTEXT")), kgo.ConsumerGroup("alice-g"), kgo.ConsumeTopics("alice-t"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.SASL(scram.Auth{User: "alice", Pass: "alice-pw"}.AsSha512Mechanism()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	if fs := cons.PollFetches(ctx); fs.Err0() != nil || fs.NumRecords() == 0 {
		t.Fatalf("alice consuming in her group: %v, %d records", fs.Err0(), fs.NumRecords())
	}
	if err := cons.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("alice commits: %v", err)
	}
	// OffsetFetch of alice's group by bob: refused; by alice: her topic
	// only, and a named topic she may not describe refused.
	of := kmsg.NewPtrOffsetFetchRequest()
	of.Group = "alice-g"
	ofr, err := of.RequestWith(ctx, bob)
	if errCode(err) != gaf && (err != nil || ofr.ErrorCode != gaf && (len(ofr.Groups) == 0 || ofr.Groups[0].ErrorCode != gaf)) {
		t.Errorf("bob's OffsetFetch of alice-g: %v %+v, want GROUP_AUTHORIZATION_FAILED", err, ofr)
	}
	of = kmsg.NewPtrOffsetFetchRequest()
	of.Group = "alice-g"
	ofg := kmsg.NewOffsetFetchRequestGroup()
	ofg.Group = "alice-g"
	for _, name := range []string{"alice-t", "secret"} {
		ot := kmsg.NewOffsetFetchRequestTopic()
		ot.Topic, ot.Partitions = name, []int32{0}
		of.Topics = append(of.Topics, ot)
		gt := kmsg.NewOffsetFetchRequestGroupTopic()
		gt.Topic, gt.Partitions = name, []int32{0}
		ofg.Topics = append(ofg.Topics, gt)
	}
	of.Groups = append(of.Groups, ofg)
	if ofr, err = of.RequestWith(ctx, alice); err != nil {
		t.Fatal(err)
	}
	codes := map[string]int16{}
	for _, tp := range ofr.Topics {
		codes[tp.Topic] = tp.Partitions[0].ErrorCode
	}
	for _, g := range ofr.Groups {
		for _, tp := range g.Topics {
			codes[tp.Topic] = tp.Partitions[0].ErrorCode
		}
	}
	if codes["alice-t"] != 0 || codes["secret"] != taf {
		t.Errorf("alice's OffsetFetch codes %v, want alice-t 0 and secret TOPIC_AUTHORIZATION_FAILED", codes)
	}

	list := func(cl *kgo.Client) []string {
		resp, err := kmsg.NewPtrListGroupsRequest().RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, g := range resp.Groups {
			out = append(out, g.Group)
		}
		return out
	}
	if got := list(alice); !slices.Contains(got, "alice-g") {
		t.Errorf("alice's ListGroups %v lacks alice-g", got)
	}
	if got := list(bob); len(got) != 0 {
		t.Errorf("bob's ListGroups %v, want none", got)
	}

	// mTLS: the certificate CN=carol,O=strom maps to User:carol, who may
	// write (and create) carol-t and nothing else.
	carol := s.ca.Issue(t, testutil.LeafOptions{Subject: pkix.Name{CommonName: "carol", Organization: []string{"strom"}}})
	if err := roundTripProduce(t, s.addr("SSL"), "carol-t", kgo.DialTLSConfig(testutil.ClientTLS(s.ca, &carol.TLS))); err != nil {
		t.Fatalf("carol over mTLS: %v", err)
	}
	if err := roundTripProduce(t, s.addr("SSL"), "alice-t", kgo.DialTLSConfig(testutil.ClientTLS(s.ca, &carol.TLS))); err == nil {
		t.Fatal("carol wrote to alice-t")
	}
}

// roundTripProduce produces one record with opts and returns its error.
func roundTripProduce(t *testing.T, seed, topic string, opts ...kgo.Opt) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(seed), kgo.AllowAutoTopicCreation(), kgo.RecordRetries(1),
		kgo.RetryTimeout(3 * time.Second)}, opts...)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	return cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("x")}).FirstErr()
}

// errCode is the Kafka error code of err (0 for nil, -1 for an error that
// is not one).
func errCode(err error) int16 {
	if err == nil {
		return 0
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Code
	}
	return -1
}
