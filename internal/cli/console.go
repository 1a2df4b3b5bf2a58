package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/console"
)

// newConsoleCmd is `strom console`: the web console and HTTP API of
// `strom serve`, for any Kafka-compatible cluster. It is a Kafka client
// like every command but serve.
func newConsoleCmd() *cobra.Command {
	conn := &connFlags{}
	var httpAddr, metricsURL, loginMech string
	var origins, hosts []string
	var login, secureCookie bool
	cmd := &cobra.Command{
		Use:   "console",
		Short: "Serve the web console and HTTP API for any Kafka cluster",
		Long: `Serve Strom's web console and HTTP API (topics, messages, live streams,
consumer groups, produce over HTTP) for a Kafka-compatible cluster.

The console talks to the cluster as an ordinary Kafka client, so it works
with Apache Kafka and Redpanda as well as Strom. strom serve already serves
it for its own broker on --http-addr; use this command for other clusters.
The API reference is at /api. It listens on 127.0.0.1:8080 unless told
otherwise (--http-addr :8080 for every interface), and answers only to
localhost, IP addresses and the names given with --http-allowed-hosts.

With --login every user logs in with their own Kafka user and password
(checked by the cluster through SASL --login-mechanism), and each user's
calls run as that user, under the cluster's ACLs; API tokens for scripts
are delegation tokens when the cluster has them on. The console then has no
Kafka identity of its own (no --sasl-* flags): the throughput history of
its overview is off.`,
		Example: `  strom console --brokers localhost:9092
  strom console --brokers kafka1:9092,kafka2:9092 --http-addr 127.0.0.1:9000
  strom console --brokers strom1:9092 --metrics-url http://strom1:8080/metrics
  strom console --brokers kafka:9093 --tls --sasl-mechanism SCRAM-SHA-512 --sasl-user admin
  strom console --brokers kafka:9093 --tls --login --http-addr :8080`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signalContext(cmd)
			defer stop()
			seeds, err := conn.seeds()
			if err != nil {
				return err
			}
			var loginCfg *console.Login
			if login {
				if conn.saslMechanism != "" || conn.saslUser != "" {
					return usageErr("--login: each user logs in with their own credentials; drop --sasl-mechanism and --sasl-user")
				}
				switch loginMech {
				case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
				default:
					return usageErr("--login-mechanism %q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", loginMech)
				}
				loginCfg = &console.Login{Mechanism: loginMech, SecureCookie: secureCookie}
			}
			opts, err := conn.opts()
			if err != nil {
				return err
			}
			// Fail now, in one line, if the cluster cannot be reached.
			// Under --login the console has no SASL identity of its own:
			// ApiVersions is the one request a SASL listener answers
			// before a login.
			if loginCfg == nil {
				cl, err := conn.client(ctx)
				if err != nil {
					return err
				}
				cl.Close()
			} else if err := apiVersionsReachable(ctx, opts); err != nil {
				return conn.explain(err)
			}

			reg := prometheus.NewRegistry()
			reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
			var metrics console.MetricsSource
			if metricsURL != "" {
				metrics = console.MetricsURL(metricsURL, nil)
			}
			con, err := console.New(console.Config{
				Metrics:        metrics,
				Brokers:        seeds,
				ClientOpts:     opts,
				Registerer:     reg,
				Logger:         slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn})),
				AllowedOrigins: origins,
				ListenAddr:     httpAddr,
				AllowedHosts:   hosts,
				Login:          loginCfg,
			})
			if err != nil {
				return err
			}
			mux := http.NewServeMux()
			mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				fmt.Fprintln(w, "ok")
			})
			// /metrics names groups and topics: the console's Host guard.
			mux.Handle("GET /metrics", console.NewHostGuard(httpAddr, hosts).Wrap(promhttp.HandlerFor(reg, promhttp.HandlerOpts{})))
			mux.Handle("/", con.Handler())
			ln, err := net.Listen("tcp", httpAddr)
			if err != nil {
				con.Close(context.Background())
				return &problem{msg: fmt.Sprintf("--http-addr %s: %v", httpAddr, err), hint: "pick a free address, e.g. --http-addr 127.0.0.1:9000"}
			}
			srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
			errc := make(chan error, 1)
			go func() { errc <- srv.Serve(ln) }()
			fmt.Fprintf(cmd.OutOrStdout(), "strom: console for %s on http://%s (API reference at /api)\n", conn.brokers, DisplayAddr(ln.Addr().String()))
			select {
			case <-ctx.Done():
			case err = <-errc:
			}
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			con.Close(sctx)
			srv.Shutdown(sctx)
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("http: %w", err)
			}
			return nil
		},
	}
	conn.register(cmd.Flags())
	cmd.Flags().StringVar(&httpAddr, "http-addr", EnvOr("http-addr", "127.0.0.1:8080"), `where to serve the console and API (":8080" for every interface; env STROM_HTTP_ADDR)`)
	cmd.Flags().StringSliceVar(&hosts, "http-allowed-hosts", EnvList("http-allowed-hosts"),
		`host names the console answers to besides localhost, IP addresses and the --http-addr host (comma-separated; "*" for any, unsafe)`)
	cmd.Flags().StringVar(&metricsURL, "metrics-url", "", "a Strom broker's /metrics (its --http-addr), for the log cleaner's state on compacted topics' pages; the Kafka protocol has no request for it")
	cmd.Flags().StringArrayVar(&origins, "allow-origin", nil, "another origin (scheme://host:port) allowed to change things and open streams (repeatable)")
	cmd.Flags().BoolVar(&login, "login", false, "users log in with their Kafka user and password; their calls run as them, under the cluster's ACLs")
	cmd.Flags().StringVar(&loginMech, "login-mechanism", "SCRAM-SHA-512", "the SASL mechanism users log in with: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
	cmd.Flags().BoolVar(&secureCookie, "secure-cookie", false, "mark the session cookie Secure even over plain HTTP (a TLS-terminating proxy in front)")
	return kafkaCommand(cmd)
}

// apiVersionsReachable sends ApiVersions to the seeds with opts (which
// carry no SASL login) and returns its error.
func apiVersionsReachable(ctx context.Context, opts []kgo.Opt) error {
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	pctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	_, err = kmsg.NewPtrApiVersionsRequest().RequestWith(pctx, cl)
	return err
}
