package cli

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stromhq/strom/internal/console"
)

// newDemoCmd is `strom demo`: sensor readings at a steady rate, so that
// the console's live chart has something to draw.
func newDemoCmd() *cobra.Command {
	conn := &connFlags{}
	var cfg console.DemoConfig
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Write sensor-style JSON readings to a topic, for the live chart",
		Long: `Write sensor readings to a topic (default streaming-data, created with 3
partitions when missing) until interrupted:

  key "s3"  value {"timestamp":"2024-05-01T12:00:00.000Z","sensor":"s3","value":21.7}

Open the topic in the console (strom serve, or strom console) and pick the
"value" field on the Live tab to watch it move. When the cluster has
consumer groups, a group (default streaming-dashboard) reads the readings
in bursts, so its lag moves on the Consumer groups page.`,
		Example: `  strom demo
  strom demo --brokers localhost:9092 --rate 20 --sensors 3
  strom serve --demo`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.Rate <= 0 || cfg.Rate > 10000 {
				return usageErr("--rate %g: want readings per second, more than 0 and at most 10000", cfg.Rate)
			}
			if cfg.Sensors < 1 || cfg.Sensors > 1000 {
				return usageErr("--sensors %d: want 1 to 1000", cfg.Sensors)
			}
			ctx, stop := signalContext(cmd)
			defer stop()
			opts, err := conn.opts()
			if err != nil {
				return err
			}
			cl, err := conn.client(ctx)
			if err != nil {
				return err
			}
			cl.Close()
			cfg.ClientOpts = opts
			// The line below is the announcement; the generator's own
			// (at info, for serve --demo's log) would say it again.
			cfg.Logger = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
			fmt.Fprintf(cmd.OutOrStdout(), "strom: writing %g readings/s from %d sensors to %s on %s; Ctrl-C stops\n", cfg.Rate, cfg.Sensors, cfg.Topic, conn.brokers)
			return console.RunDemo(ctx, cfg)
		},
	}
	conn.register(cmd.Flags())
	f := cmd.Flags()
	f.StringVarP(&cfg.Topic, "topic", "t", console.DemoTopic, "topic to write to")
	f.Int32Var(&cfg.Partitions, "partitions", 3, "partitions of the topic when it has to be created")
	f.Float64Var(&cfg.Rate, "rate", 5, "readings per second, over all sensors")
	f.IntVar(&cfg.Sensors, "sensors", 5, "number of sensors (keys s1, s2, ...)")
	f.StringVar(&cfg.Group, "group", console.DemoGroup, `consumer group reading the readings ("" for none)`)
	return kafkaCommand(cmd)
}

// WithDemo adds --demo to serve: the generator runs in the same process,
// as a Kafka client of the broker's own listener, once it is up.
func WithDemo(serve *cobra.Command) *cobra.Command {
	var demo bool
	var rate float64
	serve.Flags().BoolVar(&demo, "demo", EnvOr("demo", "") == "true", "also write demo sensor readings to streaming-data (see strom demo; env STROM_DEMO=true)")
	serve.Flags().Float64Var(&rate, "demo-rate", 5, "readings per second with --demo")
	run := serve.RunE
	serve.RunE = func(cmd *cobra.Command, args []string) error {
		if !demo {
			return run(cmd, args)
		}
		if rate <= 0 || rate > 10000 {
			return usageErr("--demo-rate %g: want readings per second, more than 0 and at most 10000", rate)
		}
		addr, _ := cmd.Flags().GetString("kafka-addr")
		host, port, err := net.SplitHostPort(addr)
		if err != nil || port == "0" {
			return usageErr("--demo needs a fixed --kafka-addr port, not %q", addr)
		}
		if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
			host = "127.0.0.1"
		}
		ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
		var wg sync.WaitGroup
		defer func() {
			stop()
			wg.Wait()
		}()
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Start once the broker listens, so a newcomer's first screen
			// is not a warning about a refused connection.
			seed := net.JoinHostPort(host, port)
			for ctx.Err() == nil {
				c, err := net.DialTimeout("tcp", seed, time.Second)
				if err == nil {
					c.Close()
					break
				}
				select {
				case <-ctx.Done():
				case <-time.After(20 * time.Millisecond):
				}
			}
			console.RunDemo(ctx, console.DemoConfig{
				ClientOpts: []kgo.Opt{kgo.SeedBrokers(seed)},
				Rate:       rate,
				Group:      console.DemoGroup,
				Logger:     slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn})),
			})
		}()
		return run(cmd, args)
	}
	return serve
}
