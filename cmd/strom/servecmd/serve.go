package servecmd

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/stromhq/strom/internal/broker"
	"github.com/stromhq/strom/internal/cli"
	"github.com/stromhq/strom/internal/metadata"
)

func newServeCmd() *cobra.Command {
	var cfg broker.Config
	var configFile string
	var sets []string
	var logLevel, logFormat string
	var nodeID, voters, controllerAddr string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run a broker: Kafka protocol on --kafka-addr, the web console and metrics on --http-addr",
		Long: `Run a single-node Kafka-compatible broker, with its web console.

With no flags it keeps its data in ./data, speaks Kafka on :9092 (advertised
to clients as localhost:9092) and serves the web console (open
http://127.0.0.1:8080: topics, messages, consumer groups, a live chart), the
HTTP API, health and metrics on 127.0.0.1:8080, this machine only: the
console has no login.
--http-addr :8080 opens it to the network; it then answers to localhost, IP
addresses and the names given with --http-allowed-hosts (403 otherwise, a
guard against DNS rebinding).
Logs go to stderr, one slog record a line: key=value text, or JSON with
--log-format json.
Every flag can also be set with an environment variable: --data-dir is
STROM_DATA_DIR, --kafka-addr is STROM_KAFKA_ADDR, and so on.

Broker and default topic settings use Kafka's names, in a server.properties
style file (--config) or one at a time (--set), for example
log.retention.ms, num.partitions, auto.create.topics.enable. A KRaft file
(process.roles, node.id, controller.quorum.voters, listeners,
advertised.listeners, log.dirs, ...) sets the Kafka listeners, their
advertised addresses and the data directory, unless the flags for them are
given; a node of Strom is broker and controller at once. Several voters make
a cluster: its nodes replicate the metadata (topics, placement, configs,
brokers, SCRAM users, ACLs) through raft, and the replicas of each partition
(replication factor above 1) form a raft group of their own. Listeners may be SSL, SASL_PLAINTEXT or SASL_SSL
(listener.security.protocol.map, ssl.keystore.location, sasl.enabled.mechanisms),
with ACLs (authorizer.class.name): see docs/SECURITY.md.`,
		Example: `  strom serve
  strom serve --data-dir /var/lib/strom --kafka-addr :19092 --advertised-addr broker1:19092
  strom serve --config server.properties --set num.partitions=3
  strom serve --http-addr :8080 --http-allowed-hosts strom.internal
  strom serve --node-id 1 --controller-quorum-voters 1@localhost:9093,2@localhost:9193,3@localhost:9293 \
    --controller-addr localhost:9093 --kafka-addr :9092 --data-dir data1 --http-addr -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			level := slog.LevelInfo
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("--log-level %q: want debug, info, warn or error", logLevel)
			}
			// Every line the broker writes is one of these records, in one
			// format, so that a log collector can parse them all.
			hopts := &slog.HandlerOptions{Level: level}
			var logger *slog.Logger
			switch logFormat {
			case "text":
				logger = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), hopts))
			case "json":
				logger = slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), hopts))
			default:
				return fmt.Errorf("--log-format %q: want text or json", logFormat)
			}
			props, err := loadProps(configFile, sets)
			if err != nil {
				return err
			}
			// The cluster flags are the KRaft settings under other names.
			if nodeID != "" {
				props["node.id"] = nodeID
			}
			if voters != "" {
				props["controller.quorum.voters"] = voters
			}
			if controllerAddr != "" {
				if props["listeners"] != "" {
					return fmt.Errorf("--controller-addr: the config file sets listeners; add CONTROLLER://%s there instead", controllerAddr)
				}
				props["listeners"] = "PLAINTEXT://" + cfg.KafkaAddr + ",CONTROLLER://" + controllerAddr
			}
			if err := applyLayout(cmd, &cfg, props, configFile); err != nil {
				return err
			}
			cfg.Props = props
			cfg.Logger = logger
			// Catch signals before serving: a SIGTERM that arrives as soon
			// as clients can connect still shuts down cleanly.
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			start := time.Now()
			b, err := broker.Start(cfg)
			if err != nil {
				return err
			}
			if len(cfg.Listeners) > 1 || len(cfg.Listeners) == 1 && cfg.Listeners[0].Protocol != "PLAINTEXT" {
				for _, l := range cfg.Listeners {
					logger.Info("kafka listening", "listener", l.Name, "protocol", l.Protocol, "addr", b.ListenerAddr(l.Name).String(), "advertised", l.Advertised)
				}
				logger.Info("data directory", "data_dir", cfg.DataDir)
			} else {
				logger.Info("kafka listening", "addr", b.KafkaAddr().String(), "advertised", advertisedFor(cfg, b), "data_dir", cfg.DataDir)
			}
			if a := b.HTTPAddr(); a != nil {
				logger.Info("web console, health and metrics", "url", "http://"+cli.DisplayAddr(a.String()))
			}
			logger.Debug("started", "took", time.Since(start))
			var failure error
			select {
			case <-ctx.Done():
			case <-b.Failed():
				failure = b.Failure()
				logger.Error("stopping: this broker cannot go on", "err", failure)
			}
			stop()
			logger.Info("shutting down")
			sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := b.Shutdown(sctx); err != nil && failure == nil {
				return fmt.Errorf("shutdown: %w", err)
			}
			if failure != nil {
				return failure
			}
			logger.Info("stopped cleanly")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.DataDir, "data-dir", cli.EnvOr("data-dir", "data"), "directory for partition logs and metadata")
	f.StringVar(&cfg.KafkaAddr, "kafka-addr", cli.EnvOr("kafka-addr", ":9092"), "Kafka protocol listener")
	f.StringVar(&cfg.AdvertisedAddr, "advertised-addr", cli.EnvOr("advertised-addr", ""), "host:port given to clients (default localhost:<kafka port>)")
	f.StringVar(&cfg.HTTPAddr, "http-addr", cli.EnvOr("http-addr", broker.DefaultHTTPAddr), `web console, HTTP API, health and metrics listener (":8080" for every interface, "-" to disable)`)
	f.StringSliceVar(&cfg.HTTPAllowedHosts, "http-allowed-hosts", cli.EnvList("http-allowed-hosts"),
		`host names the HTTP listener answers to besides localhost, IP addresses and the --http-addr host (comma-separated; "*" for any, unsafe)`)
	f.BoolVar(&cfg.Pprof, "pprof", cli.EnvOr("pprof", "") == "true", "serve Go's profiler at /debug/pprof/ on the HTTP listener (env STROM_PPROF=true)")
	f.StringVar(&configFile, "config", cli.EnvOr("config", ""), "server.properties-style file of broker and default topic configs")
	f.StringArrayVar(&sets, "set", nil, "one broker config, name=value (repeatable)")
	f.StringVar(&logLevel, "log-level", cli.EnvOr("log-level", "info"), "debug, info, warn or error")
	f.StringVar(&nodeID, "node-id", cli.EnvOr("node-id", ""), "node.id: this node's id in its cluster (default 1)")
	f.StringVar(&voters, "controller-quorum-voters", cli.EnvOr("controller-quorum-voters", ""),
		"controller.quorum.voters: the cluster's nodes, id@host:port of their controller listeners (e.g. 1@localhost:9093,2@localhost:9193,3@localhost:9293)")
	f.StringVar(&controllerAddr, "controller-addr", cli.EnvOr("controller-addr", ""), "this node's controller listener (host:port) in a cluster, where its peers reach it")
	f.StringVar(&logFormat, "log-format", cli.EnvOr("log-format", "text"), "text (key=value) or json, one record a line on stderr")
	return cmd
}

func advertisedFor(cfg broker.Config, b *broker.Broker) string {
	if cfg.AdvertisedAddr != "" {
		return cfg.AdvertisedAddr
	}
	return "localhost:" + strconv.Itoa(b.KafkaAddr().(*net.TCPAddr).Port)
}

// loadProps reads the --config file and the --set pairs (which win).
func loadProps(configFile string, sets []string) (map[string]string, error) {
	props := map[string]string{}
	if configFile != "" {
		f, err := os.Open(configFile)
		if err != nil {
			return nil, fmt.Errorf("--config: %w", err)
		}
		props, err = metadata.ParseProperties(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("--config %s: %w", configFile, err)
		}
	}
	for _, s := range sets {
		k, v, ok := strings.Cut(s, "=")
		if !ok {
			return nil, fmt.Errorf("--set %q: want name=value", s)
		}
		props[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return props, nil
}

// applyLayout takes the Kafka listener, advertised address and data
// directory from the KRaft settings (listeners, advertised.listeners,
// log.dirs) where the flags for them (or their STROM_* variables) were not
// given, and refuses a file
// that names a node Strom cannot be.
func applyLayout(cmd *cobra.Command, cfg *broker.Config, props map[string]string, configFile string) error {
	bc, err := metadata.NewBrokerConfig(props)
	if err != nil {
		return fmt.Errorf("%s: %w", orFlags(configFile), err)
	}
	l, err := bc.Layout()
	if err != nil {
		return fmt.Errorf("%s: %w", orFlags(configFile), err)
	}
	given := func(flag string) bool {
		_, env := os.LookupEnv("STROM_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_")))
		return env || cmd.Flags().Changed(flag)
	}
	set := func(flag string, dst *string, v string) {
		if v != "" && !given(flag) {
			*dst = v
		}
	}
	if given("kafka-addr") {
		// The flag names one PLAINTEXT listener and wins over the file's.
		cfg.Listeners = nil
	} else {
		cfg.Listeners = l.Listeners
		if given("advertised-addr") && len(cfg.Listeners) > 0 {
			cfg.Listeners[0].Advertised = cfg.AdvertisedAddr
		}
	}
	set("kafka-addr", &cfg.KafkaAddr, l.KafkaAddr)
	set("advertised-addr", &cfg.AdvertisedAddr, l.AdvertisedAddr)
	set("data-dir", &cfg.DataDir, l.DataDir)
	return nil
}

func orFlags(configFile string) string {
	if configFile == "" {
		return "--set"
	}
	return "--config " + configFile
}
