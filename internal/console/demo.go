package console

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DemoConfig configures the demo generator (strom demo, strom serve --demo).
type DemoConfig struct {
	// ClientOpts reach the cluster: at least kgo.SeedBrokers.
	ClientOpts []kgo.Opt
	// Topic receives the readings [streaming-data]; created with
	// Partitions partitions [3] when missing.
	Topic      string
	Partitions int32
	// Rate is readings per second over all sensors [5]; Sensors is how
	// many sensors take turns [5].
	Rate    float64
	Sensors int
	// Group, when the cluster has consumer groups, is a consumer group
	// that reads the readings in bursts, so that its lag rises and falls
	// on the group page ["" for none]. Strom without groups skips it.
	Group  string
	Logger *slog.Logger
}

// DemoTopic and DemoGroup are the demo's defaults.
const (
	DemoTopic = "streaming-data"
	DemoGroup = "streaming-dashboard"
)

// RunDemo writes sensor readings until ctx ends:
//
//	key "s3", value {"timestamp":"2024-05-01T12:00:00.000Z","sensor":"s3","value":21.7}
//
// Each sensor follows its own slow wave plus noise, so a chart of "value"
// split by key shows distinct, moving lines. It returns nil when ctx ends.
func RunDemo(ctx context.Context, cfg DemoConfig) error {
	if cfg.Topic == "" {
		cfg.Topic = DemoTopic
	}
	if cfg.Partitions <= 0 {
		cfg.Partitions = 3
	}
	if cfg.Rate <= 0 {
		cfg.Rate = 5
	}
	if cfg.Sensors <= 0 {
		cfg.Sensors = 5
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	log := cfg.Logger
	cl, err := kgo.NewClient(append(append([]kgo.Opt{}, cfg.ClientOpts...),
		kgo.ClientID("strom-demo"),
		kgo.DefaultProduceTopic(cfg.Topic),
		kgo.ProducerLinger(0),
		kgo.RecordDeliveryTimeout(30*time.Second),
	)...)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)

	// Create the topic, retrying while the cluster comes up.
	for attempt := 0; ; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		resp, err := adm.CreateTopic(cctx, cfg.Partitions, -1, nil, cfg.Topic)
		cancel()
		if err == nil {
			err = resp.Err
		}
		if err == nil || errors.Is(err, kerr.TopicAlreadyExists) {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		if attempt == 0 || attempt%10 == 0 {
			log.Warn("demo: cannot create the topic yet; retrying", "topic", cfg.Topic, "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
	log.Info("demo: writing sensor readings", "topic", cfg.Topic, "rate", cfg.Rate, "sensors", cfg.Sensors)

	var wg sync.WaitGroup
	defer wg.Wait()
	if cfg.Group != "" {
		if groupsAdvertised(ctx, adm) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				demoConsumer(ctx, cfg, log)
			}()
		} else {
			log.Info("demo: the cluster has no consumer groups; the demo consumer group is off", "group", cfg.Group)
		}
	}

	interval := time.Duration(float64(time.Second) / cfg.Rate)
	tick := time.NewTicker(max(interval, time.Millisecond))
	defer tick.Stop()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	level := make([]float64, cfg.Sensors)
	for i := range level {
		level[i] = 18 + 1.5*float64(i)
	}
	var mu sync.Mutex
	var lastErr time.Time
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			// Deliver what is in flight before closing the client.
			fctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			cl.Flush(fctx)
			cancel()
			return nil
		case <-tick.C:
		}
		i := n % cfg.Sensors
		now := time.Now()
		// A slow wave, a random walk and some noise.
		level[i] += rng.NormFloat64() * 0.08
		v := level[i] + 2*math.Sin(float64(now.UnixMilli())/20000+float64(i)) + rng.NormFloat64()*0.15
		sensor := "s" + strconv.Itoa(i+1)
		val := fmt.Appendf(nil, `{"timestamp":%q,"sensor":%q,"value":%s}`,
			now.UTC().Format("2006-01-02T15:04:05.000Z"), sensor, strconv.FormatFloat(math.Round(v*10)/10, 'f', -1, 64))
		cl.Produce(ctx, &kgo.Record{Key: []byte(sensor), Value: val, Timestamp: now}, func(_ *kgo.Record, err error) {
			if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, kgo.ErrClientClosed) {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if time.Since(lastErr) > 10*time.Second {
				lastErr = time.Now()
				log.Warn("demo: produce failed", "err", err)
			}
		})
	}
}

// groupsAdvertised reports whether any broker has JoinGroup and
// OffsetCommit, so that the demo consumer does not spin against a
// cluster without groups.
func groupsAdvertised(ctx context.Context, adm *kadm.Client) bool {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	vs, err := adm.ApiVersions(ctx)
	if err != nil {
		return false
	}
	ok := false
	vs.Each(func(v kadm.BrokerApiVersions) {
		_, join := v.KeyMaxVersion(kmsg.JoinGroup.Int16())
		_, commit := v.KeyMaxVersion(kmsg.OffsetCommit.Int16())
		ok = ok || v.Err == nil && join && commit
	})
	return ok
}

// demoConsumer reads the readings as a dashboard would, in bursts every
// few seconds and committing as it goes, so its lag climbs and drops.
func demoConsumer(ctx context.Context, cfg DemoConfig, log *slog.Logger) {
	cl, err := kgo.NewClient(append(append([]kgo.Opt{}, cfg.ClientOpts...),
		kgo.ClientID("strom-demo-dashboard"),
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(cfg.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()),
		kgo.DisableAutoCommit(),
	)...)
	if err != nil {
		log.Warn("demo: consumer", "err", err)
		return
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		cl.LeaveGroupContext(cctx)
		cl.Close()
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(3 * time.Second):
		}
		// Catch up with everything there is, then commit.
		var recs []*kgo.Record
		for range 50 {
			pctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			fs := cl.PollFetches(pctx)
			cancel()
			if ctx.Err() != nil {
				return
			}
			if fs.NumRecords() == 0 {
				break
			}
			recs = append(recs, fs.Records()...)
		}
		if len(recs) > 0 {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if err := cl.CommitRecords(cctx, recs...); err != nil && ctx.Err() == nil {
				log.Debug("demo: commit", "err", err)
			}
			cancel()
		}
	}
}
