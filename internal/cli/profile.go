package cli

// Profiles and client properties: where the connection flags get their
// values when the command line does not give them.
//
// Precedence, first wins: a flag on the command line; -X key=value (Kafka
// and librdkafka client property names, as kcat takes them); a STROM_*
// environment variable; the profile (--profile, STROM_PROFILE, or the
// file's "current"); the built-in default.
//
// The config file is $STROM_CLI_CONFIG, or strom/config under the user's
// config directory (~/.config/strom/config). Not $STROM_CONFIG: that is
// serve's --config, a server.properties file. It is plain text:
//
//	# comments start with # or ;
//	current = prod
//
//	[profile local]
//	brokers = localhost:9092
//
//	[profile prod]
//	brokers = kafka1:9093,kafka2:9093
//	tls-ca = /etc/ssl/prod-ca.pem
//	sasl-mechanism = SCRAM-SHA-512
//	sasl-user = alice
//	sasl-password-env = PROD_KAFKA_PASSWORD
//
// A profile's keys are the connection flags' names (brokers, client-id,
// timeout, tls, tls-ca, tls-cert, tls-key, tls-skip-verify,
// sasl-mechanism, sasl-user, sasl-password), plus sasl-password-env: the
// environment variable holding the password, so that the file need not.

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// profileKeys are the keys a profile may set: the connection flags.
var profileKeys = []string{"brokers", "client-id", "timeout", "tls", "tls-ca", "tls-cert", "tls-key", "tls-skip-verify",
	"sasl-mechanism", "sasl-user", "sasl-password", "sasl-password-env"}

// clientProps maps Kafka's and librdkafka's client property names (-X) to
// our flags; a value of "" in the map means the property is handled
// specially (security.protocol).
var clientProps = map[string]string{
	"bootstrap.servers":                   "brokers",
	"metadata.broker.list":                "brokers",
	"client.id":                           "client-id",
	"security.protocol":                   "",
	"sasl.mechanism":                      "sasl-mechanism",
	"sasl.mechanisms":                     "sasl-mechanism",
	"sasl.username":                       "sasl-user",
	"sasl.password":                       "sasl-password",
	"ssl.ca.location":                     "tls-ca",
	"ssl.certificate.location":            "tls-cert",
	"ssl.key.location":                    "tls-key",
	"enable.ssl.certificate.verification": "",
}

// configFile is a parsed config file.
type configFile struct {
	path     string
	current  string
	profiles map[string]map[string]string
	order    []string // profile names as in the file
}

// configPath is where the config file is, whether or not it exists.
func configPath() (string, error) {
	if p := os.Getenv("STROM_CLI_CONFIG"); p != "" {
		return p, nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no config directory (set STROM_CLI_CONFIG): %w", err)
	}
	return filepath.Join(dir, "strom", "config"), nil
}

// loadConfig reads the config file; a missing file is an empty config.
func loadConfig() (*configFile, error) {
	path, err := configPath()
	if err != nil {
		return nil, err
	}
	cf := &configFile{path: path, profiles: map[string]map[string]string{}}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return cf, nil
	}
	if err != nil {
		return nil, &problem{msg: "config file: " + err.Error()}
	}
	defer f.Close()
	bad := func(n int, why string) error {
		return &problem{msg: fmt.Sprintf("%s line %d: %s", path, n, why), hint: "see \"strom profile --help\""}
	}
	var cur map[string]string
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if strings.HasPrefix(line, "[") {
			name, ok := strings.CutPrefix(strings.TrimSuffix(line, "]"), "[profile ")
			name = strings.TrimSpace(name)
			if !ok || !strings.HasSuffix(line, "]") || name == "" {
				return nil, bad(n, fmt.Sprintf("%q: want [profile NAME]", line))
			}
			if _, dup := cf.profiles[name]; dup {
				return nil, bad(n, fmt.Sprintf("profile %q appears twice", name))
			}
			cur = map[string]string{}
			cf.profiles[name] = cur
			cf.order = append(cf.order, name)
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" {
			return nil, bad(n, fmt.Sprintf("%q: want key = value", line))
		}
		if cur == nil {
			if k != "current" {
				return nil, bad(n, fmt.Sprintf("%q before any [profile NAME]: only current = NAME may be there", k))
			}
			cf.current = v
			continue
		}
		if !slices.Contains(profileKeys, k) {
			return nil, bad(n, fmt.Sprintf("unknown key %q: want one of %s", k, strings.Join(profileKeys, ", ")))
		}
		cur[k] = v
	}
	if err := sc.Err(); err != nil {
		return nil, &problem{msg: fmt.Sprintf("config file %s: %v", path, err)}
	}
	if cf.current != "" && cf.profiles[cf.current] == nil {
		return nil, &problem{msg: fmt.Sprintf("%s: current profile %q is not in the file", path, cf.current), hint: "see \"strom profile list\""}
	}
	return cf, nil
}

// resolve fills the connection flags the command line did not set, from
// -X properties, then the environment (already the flags' defaults), then
// the profile. It runs once, before the flags are used.
func (c *connFlags) resolve() error {
	if c.resolved || c.fs == nil {
		return nil
	}
	c.resolved = true
	set := func(name, value, from string) error {
		if err := c.fs.Set(name, value); err != nil {
			return usageErr("%s: %s=%q: %v", from, name, value, err)
		}
		return nil
	}
	explicit := map[string]bool{}
	// VisitAll and Changed, not Visit: a persistent flag given after a
	// subcommand is recorded in the subcommand's set, on the same *Flag.
	c.fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed {
			explicit[f.Name] = true
		}
	})

	// -X, after explicit flags.
	for _, kv := range c.xprops {
		k, v, ok := strings.Cut(kv, "=")
		k = strings.TrimSpace(k)
		flag, known := clientProps[k]
		if !ok || !known {
			names := make([]string, 0, len(clientProps))
			for n := range clientProps {
				names = append(names, n)
			}
			sort.Strings(names)
			return usageErr("-X %q: want key=value, key one of %s", kv, strings.Join(names, ", "))
		}
		switch k {
		case "security.protocol":
			switch strings.ToUpper(v) {
			case "SSL", "SASL_SSL":
				flag, v = "tls", "true"
			case "PLAINTEXT", "SASL_PLAINTEXT":
				flag, v = "tls", "false"
			default:
				return usageErr("-X security.protocol=%s: want PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL", v)
			}
		case "enable.ssl.certificate.verification":
			switch v {
			case "false":
				flag, v = "tls-skip-verify", "true"
			case "true":
				flag, v = "tls-skip-verify", "false"
			default:
				return usageErr("-X %s=%s: want true or false", k, v)
			}
		}
		if explicit[flag] {
			continue // the flag itself wins
		}
		if err := set(flag, v, "-X "+k); err != nil {
			return err
		}
		explicit[flag] = true
	}

	_, brokersEnv := os.LookupEnv("STROM_BROKERS")
	c.brokersExplicit = explicit["brokers"] || brokersEnv
	cf, err := loadConfig()
	if err != nil {
		return err
	}
	name := c.profile
	if name == "" {
		name = cf.current
	}
	if name == "" {
		return nil
	}
	p, ok := cf.profiles[name]
	if !ok {
		hint := fmt.Sprintf("profiles in %s: %s", cf.path, strings.Join(cf.order, ", "))
		if len(cf.order) == 0 {
			hint = fmt.Sprintf("%s has no profiles; see \"strom profile --help\"", cf.path)
		}
		return &problem{msg: fmt.Sprintf("no profile %q", name), hint: hint}
	}
	c.profileName = name
	for _, k := range profileKeys {
		v, ok := p[k]
		if !ok {
			continue
		}
		flag := k
		if k == "sasl-password-env" {
			flag, v = "sasl-password", os.Getenv(v)
			if v == "" {
				return &problem{msg: fmt.Sprintf("profile %q: sasl-password-env names %s, which is not set", name, p[k])}
			}
		}
		_, fromEnv := os.LookupEnv("STROM_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_")))
		if explicit[flag] || fromEnv {
			continue
		}
		if err := set(flag, v, fmt.Sprintf("profile %q in %s", name, cf.path)); err != nil {
			return err
		}
	}
	return nil
}

// newProfileCmd is `strom profile`: list the config file's profiles and
// choose the current one.
func newProfileCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "profile",
		Short: "List connection profiles and choose the current one",
		Long: `A profile names a cluster and how to reach it: brokers, TLS and SASL. The
commands use the current profile for every connection flag not given on the
command line, with -X or in a STROM_* variable; --profile NAME (or
STROM_PROFILE) picks another for one command.

The profiles live in $STROM_CLI_CONFIG, or ~/.config/strom/config:

  current = prod

  [profile local]
  brokers = localhost:9092

  [profile prod]
  brokers = kafka1:9093,kafka2:9093
  tls-ca = /etc/ssl/prod-ca.pem
  sasl-mechanism = SCRAM-SHA-512
  sasl-user = alice
  sasl-password-env = PROD_KAFKA_PASSWORD

Keys are the connection flags' names (brokers, client-id, timeout, tls,
tls-ca, tls-cert, tls-key, tls-skip-verify, sasl-mechanism, sasl-user,
sasl-password) and sasl-password-env, the variable that holds the password.`,
		Example: `  strom profile list
  strom profile use prod
  strom topic list --profile local`,
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List the profiles; * marks the current one",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cf, err := loadConfig()
			if err != nil {
				return err
			}
			if len(cf.order) == 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "strom: no profiles in %s (see \"strom profile --help\")\n", cf.path)
				return nil
			}
			t := newTable("", "PROFILE", "BROKERS")
			for _, n := range cf.order {
				mark := " "
				if n == cf.current {
					mark = "*"
				}
				t.add(mark, n, orDefault(cf.profiles[n]["brokers"], defaultBrokers))
			}
			return t.write(cmd.OutOrStdout())
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "use NAME",
		Short: "Make NAME the current profile",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cf, err := loadConfig()
			if err != nil {
				return err
			}
			if _, ok := cf.profiles[args[0]]; !ok {
				return &problem{msg: fmt.Sprintf("no profile %q in %s", args[0], cf.path), hint: "see \"strom profile list\""}
			}
			if err := cf.setCurrent(args[0]); err != nil {
				return &problem{msg: "config file: " + err.Error()}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "current profile: %s\n", args[0])
			return nil
		},
	})
	return kafkaCommand(cmd)
}

// setCurrent rewrites the file's current = line (or adds one at the top),
// keeping every other line as it is; written to a temporary file and
// renamed, so that a crash leaves the old file or the new one.
func (cf *configFile) setCurrent(name string) error {
	b, err := os.ReadFile(cf.path)
	if err != nil {
		return err
	}
	lines := strings.SplitAfter(string(b), "\n")
	done := false
	for i, l := range lines {
		t := strings.TrimSpace(l)
		if strings.HasPrefix(t, "[") {
			break
		}
		if k, _, ok := strings.Cut(t, "="); ok && strings.TrimSpace(k) == "current" {
			lines[i] = "current = " + name + "\n"
			done = true
			break
		}
	}
	out := strings.Join(lines, "")
	if !done {
		out = "current = " + name + "\n" + out
	}
	return replaceFile(cf.path, []byte(out))
}

// replaceFile replaces the file at path (through a symbolic link, as
// dotfile managers keep it) with content: a temporary file of its own in
// the same directory, synced, renamed over it; removed if anything fails.
// A crash leaves the old file or the new one, and two commands at once
// never share a temporary file.
func replaceFile(path string, content []byte) error {
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	mode := os.FileMode(0o600)
	if fi, err := os.Stat(path); err == nil {
		mode = fi.Mode().Perm()
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".strom-config-*.tmp")
	if err != nil {
		return err
	}
	_, err = f.Write(content)
	if err == nil {
		err = f.Chmod(mode)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}
