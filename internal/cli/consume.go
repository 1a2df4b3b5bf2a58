package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

type consumeFlags struct {
	topics        []string
	group         string
	fromBeginning bool
	offset        string
	timestamp     string
	partitions    []int32
	count         int64
	exit          bool
	format        string
	properties    []string
}

func newConsumeCmd() *cobra.Command {
	conn := &connFlags{}
	cf := &consumeFlags{}
	cmd := &cobra.Command{
		Use:   "consume TOPIC...",
		Short: "Print records from topics",
		Long: `Print records from one or more topics, as kafka-console-consumer.sh and
kcat -C do: by default each record's value on a line, from the end of
each partition on (new records only), until Ctrl-C.

Where to start (pick one; the default is latest):
  --from-beginning            the start of each partition
  --offset earliest|latest    the start or the end
  --offset N                  offset N (clamped to what the log holds)
  --offset -N                 N records before the end
  --timestamp T               the first record at or after T: milliseconds,
                              2024-05-01T12:00:00Z, 2024-05-01, or -15m (ago)
When to stop: -n/--count N records, or --exit (-e) at the end offsets
read when the command started.

Without --group nothing is committed. With --group the partitions are
assigned by the group, the start flags apply only to partitions without a
committed offset, and the offset of every printed record is committed.

` + formatHelp,
		Example: `  strom consume quickstart-events --from-beginning
  strom consume --bootstrap-server localhost:9092 --topic test1 --from-beginning --max-messages 10
  strom consume game-events -o beginning -e -f '%k => %s (partition %p, offset %o)\n'
  strom consume orders --format json --exit | jq .value
  strom consume orders --group billing --from-beginning
  strom consume orders --partition 0 --offset -10 --exit
  strom consume logs --timestamp -1h --count 100`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runConsume(cmd, args, conn, cf)
		},
	}
	f := cmd.Flags()
	conn.register(f)
	f.StringArrayVarP(&cf.topics, "topic", "t", nil, "topic to consume (repeatable; same as the arguments)")
	f.StringVarP(&cf.group, "group", "g", "", "consume as a member of this consumer group, committing offsets")
	f.BoolVar(&cf.fromBeginning, "from-beginning", false, "start at the beginning of each partition")
	f.StringVarP(&cf.offset, "offset", "o", "", "where to start: earliest, latest, N, or -N from the end")
	f.StringVar(&cf.timestamp, "timestamp", "", "start at the first record at or after this time")
	f.Int32SliceVarP(&cf.partitions, "partition", "p", nil, "consume only these partitions (comma-separated or repeated)")
	f.Int64VarP(&cf.count, "count", "n", 0, "stop after this many records (also --max-messages)")
	f.BoolVarP(&cf.exit, "exit", "e", false, "stop at the end offsets read at start")
	f.StringVarP(&cf.format, "format", "f", "", `output format (tokens below), or json; default %v\n`)
	f.StringArrayVar(&cf.properties, "property", nil, "kafka-console-consumer property: print.key, print.value, print.timestamp, print.partition, print.offset, print.headers, key.separator")
	return kafkaCommand(cmd)
}

// startKind is where consumption starts in each partition.
type startKind int

const (
	startLatest startKind = iota
	startEarliest
	startAt       // offset n
	startFromEnd  // n before the end
	startAtMillis // first record at or after millisecond n
)

type startSpec struct {
	kind startKind
	n    int64
}

func (cf *consumeFlags) start(changedOffset bool) (startSpec, error) {
	given := 0
	for _, b := range []bool{cf.fromBeginning, changedOffset, cf.timestamp != ""} {
		if b {
			given++
		}
	}
	if given > 1 {
		return startSpec{}, usageErr("give only one of --from-beginning, --offset and --timestamp")
	}
	switch {
	case cf.fromBeginning:
		return startSpec{kind: startEarliest}, nil
	case cf.timestamp != "":
		t, err := parseTime("--timestamp", cf.timestamp)
		return startSpec{kind: startAtMillis, n: t.UnixMilli()}, err
	case !changedOffset:
		return startSpec{kind: startLatest}, nil
	}
	return parseOffsetSpec("--offset", cf.offset)
}

func parseOffsetSpec(flag, s string) (startSpec, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "earliest", "beginning", "oldest", "start", "smallest":
		return startSpec{kind: startEarliest}, nil
	case "latest", "end", "newest", "largest":
		return startSpec{kind: startLatest}, nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return startSpec{}, usageErr("%s %q: want earliest, latest, an offset N, or -N for N before the end", flag, s)
	}
	if n < 0 {
		return startSpec{kind: startFromEnd, n: -n}, nil
	}
	return startSpec{kind: startAt, n: n}, nil
}

// kgoOffset is the spec as a kgo reset offset, for group consumers.
func (s startSpec) kgoOffset() kgo.Offset {
	switch s.kind {
	case startEarliest:
		return kgo.NewOffset().AtStart()
	case startAt:
		return kgo.NewOffset().At(s.n)
	case startFromEnd:
		return kgo.NewOffset().AtEnd().Relative(-s.n)
	case startAtMillis:
		return kgo.NewOffset().AfterMilli(s.n)
	}
	return kgo.NewOffset().AtEnd()
}

// resolve is the spec as an offset in one partition whose log holds
// [start, end); atMillis is the ListOffsets answer for a time spec.
func (s startSpec) resolve(start, end, atMillis int64) int64 {
	switch s.kind {
	case startEarliest:
		return start
	case startAt:
		return min(max(s.n, start), end)
	case startFromEnd:
		return max(start, end-s.n)
	case startAtMillis:
		if atMillis < 0 {
			return end
		}
		return min(max(atMillis, start), end)
	}
	return end
}

type tp struct {
	topic     string
	partition int32
}

func runConsume(cmd *cobra.Command, args []string, conn *connFlags, cf *consumeFlags) error {
	topics, err := names(args, cf.topics, "topic", `"strom consume orders --from-beginning"`)
	if err != nil {
		return err
	}
	format, err := cf.outputFormat(cmd.Flags().Changed("format"))
	if err != nil {
		return err
	}
	spec, err := cf.start(cmd.Flags().Changed("offset"))
	if err != nil {
		return err
	}
	if cf.count < 0 {
		return usageErr("--count %d: want a positive number of records", cf.count)
	}
	if cf.group != "" && len(cf.partitions) > 0 {
		return usageErr("--partition cannot be used with --group: the group assigns the partitions")
	}
	opts, err := conn.opts()
	if err != nil {
		return err
	}
	ctx, cancel := signalContext(cmd)
	defer cancel()
	meta, err := conn.client(ctx)
	if err != nil {
		return err
	}
	if cf.group != "" {
		if err := requireAPIs(ctx, kadm.NewClient(meta), conn, "consumer groups", "consume without --group", groupAPIs...); err != nil {
			meta.Close()
			return err
		}
	}
	plan, err := planConsume(ctx, kadm.NewClient(meta), conn, cf, topics, spec)
	meta.Close()
	if err != nil {
		return err
	}
	if cf.exit && len(plan.ends) == 0 {
		return nil // every partition is already at its end
	}

	note := &waitNote{w: cmd.ErrOrStderr(), conn: conn}
	opts = append(opts, kgo.KeepControlRecords(), kgo.FetchMaxWait(time.Second), kgo.WithHooks(note))
	if cf.group != "" {
		opts = append(opts, kgo.ConsumerGroup(cf.group), kgo.ConsumeTopics(topics...),
			kgo.ConsumeResetOffset(spec.kgoOffset()), kgo.AutoCommitMarks())
	} else {
		opts = append(opts, kgo.ConsumePartitions(plan.offsets), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return conn.explain(err)
	}
	defer cl.Close()

	w := bufio.NewWriterSize(cmd.OutOrStdout(), 256<<10)
	var (
		buf     []byte
		printed int64
		ferr    error
	)
	for stop := false; !stop; {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil || fs.IsClientClosed() {
			break
		}
		waiting := false
		fs.EachError(func(t string, p int32, err error) {
			if errors.Is(err, context.Canceled) {
				return
			}
			if dl, ok := errors.AsType[*kgo.ErrDataLoss](err); ok {
				fmt.Fprintf(cmd.ErrOrStderr(), "strom: note: %s [%d]: records lost (retention or truncation); continuing at offset %d\n", dl.Topic, dl.Partition, dl.ResetTo)
				return
			}
			if transient(err) {
				// kgo retries (the group rejoins) with backoff: wait.
				note.failed("", err)
				waiting = true
				return
			}
			if ferr == nil {
				ferr = explain(err, conn.with(errContext{topic: t, group: cf.group}))
			}
		})
		if ferr != nil {
			break
		}
		if !waiting && fs.NumRecords() > 0 {
			// An error code (a rebalance, a leader moving) ends without a
			// new connection: records flowing again end the wait.
			note.recovered()
		}
		for it := fs.RecordIter(); !it.Done() && !stop; {
			r := it.Next()
			key := tp{r.Topic, r.Partition}
			if cf.exit {
				end, ok := plan.ends[key]
				if !ok {
					continue // done, or written after we started
				}
				if r.Offset+1 >= end {
					delete(plan.ends, key)
					stop = len(plan.ends) == 0
				}
				if r.Offset >= end {
					continue
				}
			}
			if r.Attrs.IsControl() {
				continue
			}
			buf = format.Append(buf[:0], r)
			w.Write(buf)
			if cf.group != "" {
				cl.MarkCommitRecords(r)
			}
			if printed++; cf.count > 0 && printed >= cf.count {
				stop = true
			}
		}
		if err := w.Flush(); err != nil {
			return &problem{msg: "writing output: " + err.Error()}
		}
	}
	if err := w.Flush(); err != nil {
		return &problem{msg: "writing output: " + err.Error()}
	}
	if cf.group != "" {
		cctx, ccancel := context.WithTimeout(context.Background(), conn.timeout)
		defer ccancel()
		if err := cl.CommitMarkedOffsets(cctx); err != nil && ferr == nil {
			ferr = explain(err, conn.with(errContext{group: cf.group}))
		}
	}
	return ferr
}

// consumePlan is where each partition starts and, with --exit, where it
// ends (only partitions with records left to read are listed).
type consumePlan struct {
	offsets map[string]map[int32]kgo.Offset
	ends    map[tp]int64
}

func planConsume(ctx context.Context, adm *kadm.Client, conn *connFlags, cf *consumeFlags, topics []string, spec startSpec) (*consumePlan, error) {
	tds, err := existingTopics(ctx, adm, conn, topics)
	if err != nil {
		return nil, err
	}
	for _, t := range topics {
		for _, p := range cf.partitions {
			if _, ok := tds[t].Partitions[p]; !ok {
				n := len(tds[t].Partitions)
				return nil, &problem{msg: fmt.Sprintf("topic %q has %d partitions (0 to %d); there is no partition %d", t, n, n-1, p), hint: "pick another --partition"}
			}
		}
	}
	plan := &consumePlan{offsets: map[string]map[int32]kgo.Offset{}, ends: map[tp]int64{}}
	// Without --exit, a plain consumer needs no offsets listed: kgo
	// resolves the spec itself. With --exit, or for a start that must be
	// clamped to the log, list them.
	needLists := cf.exit || cf.group == ""
	if !needLists {
		return plan, nil
	}
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err != nil {
		return nil, conn.explain(err)
	}
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return nil, conn.explain(err)
	}
	var atMillis kadm.ListedOffsets
	if spec.kind == startAtMillis {
		if atMillis, err = adm.ListOffsetsAfterMilli(ctx, spec.n, topics...); err != nil {
			return nil, conn.explain(err)
		}
	}
	var committed kadm.OffsetResponses
	if cf.group != "" {
		// A group that does not exist yet has committed nothing.
		if committed, err = adm.FetchOffsetsForTopics(ctx, cf.group, topics...); errors.Is(err, kerr.GroupIDNotFound) {
			committed = nil
		} else if err != nil {
			return nil, explain(err, conn.with(errContext{group: cf.group}))
		}
	}
	for _, t := range topics {
		ps := sortedPartitions(tds[t])
		if len(cf.partitions) > 0 {
			ps = cf.partitions
		}
		plan.offsets[t] = map[int32]kgo.Offset{}
		for _, p := range ps {
			s, sok := starts.Lookup(t, p)
			e, eok := ends.Lookup(t, p)
			if !sok || !eok || s.Err != nil || e.Err != nil {
				err := errors.Join(s.Err, e.Err)
				if err == nil {
					err = fmt.Errorf("no offsets listed for %s [%d]", t, p)
				}
				return nil, explain(err, conn.with(errContext{topic: t}))
			}
			at := int64(-1)
			if o, ok := atMillis.Lookup(t, p); ok && o.Err == nil {
				at = o.Offset
			}
			pos := spec.resolve(s.Offset, e.Offset, at)
			if c, ok := committed.Lookup(t, p); ok && c.Err == nil && c.At >= 0 {
				pos = c.At
			}
			plan.offsets[t][p] = kgo.NewOffset().At(pos)
			if pos < e.Offset {
				plan.ends[tp{t, p}] = e.Offset
			}
		}
	}
	return plan, nil
}

// outputFormat is --format, or the format Kafka's console consumer
// properties describe.
func (cf *consumeFlags) outputFormat(formatChanged bool) (*Format, error) {
	if len(cf.properties) > 0 {
		if formatChanged {
			return nil, usageErr("give either --format or --property print.*, not both")
		}
		props := map[string]string{}
		for _, p := range cf.properties {
			k, v, ok := strings.Cut(p, "=")
			switch k {
			case "print.key", "print.value", "print.timestamp", "print.partition", "print.offset", "print.headers", "key.separator":
			default:
				ok = false
			}
			if !ok {
				return nil, usageErr("--property %q: want one of print.key, print.value, print.timestamp, print.partition, print.offset, print.headers (=true or false) or key.separator=...", p)
			}
			props[k] = v
		}
		sep := strings.NewReplacer(`%`, `%%`).Replace(orDefault(props["key.separator"], `\t`))
		var b strings.Builder
		for _, x := range []struct{ prop, tok string }{
			{"print.timestamp", "CreateTime:%T"}, {"print.partition", "Partition:%p"}, {"print.offset", "Offset:%o"},
			{"print.headers", "%h"}, {"print.key", "%k"},
		} {
			if props[x.prop] == "true" {
				b.WriteString(x.tok + sep)
			}
		}
		if props["print.value"] != "false" {
			b.WriteString("%v")
		}
		cf.format = b.String() + `\n`
	}
	f, err := ParseFormat(orDefault(cf.format, `%v\n`))
	if err != nil {
		return nil, usageErr("--format: %v", err)
	}
	// Kafka's console consumer prints a null key or value as null.
	f.kafkaNulls = len(cf.properties) > 0
	return f, nil
}
