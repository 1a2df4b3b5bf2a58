package cli

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func newTransactionsCmd() *cobra.Command {
	conn := &connFlags{}
	cmd := &cobra.Command{
		Use:     "transactions",
		Aliases: []string{"transaction", "txn"},
		Short:   "List, describe and abort transactions",
		Long: `Inspect the transactions of transactional producers on any
Kafka-compatible cluster, as kafka-transactions.sh does: list the
transactional ids and their states, describe one (its producer id and
epoch, how long its open transaction has run, its partitions), and abort
a hanging transaction on a partition (one whose producer is gone, keeping
read_committed consumers behind it).`,
		Example: `  strom transactions list
  strom transactions list --state Ongoing
  strom transactions describe my-app-tx
  strom transactions describe-producers --topic orders --partition 0
  strom transactions abort --topic orders --partition 0 --start-offset 4711`,
	}
	conn.register(cmd.PersistentFlags())
	cmd.AddCommand(txnListCmd(conn), txnDescribeCmd(conn), txnProducersCmd(conn), txnAbortCmd(conn))
	return kafkaCommand(cmd)
}

const txnHint = "transaction commands need a broker that implements transactions (Kafka 3.0+ for list and describe)"

type txnListEntry struct {
	TransactionalID string `json:"transactional_id"`
	ProducerID      int64  `json:"producer_id"`
	State           string `json:"state"`
	Coordinator     int32  `json:"coordinator"`
}

func txnListCmd(conn *connFlags) *cobra.Command {
	var output string
	var states []string
	var pids []int64
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List transactional ids and their states",
		Long: `List the cluster's transactional ids, sorted, with their producer id
and state (Empty, Ongoing, PrepareCommit, PrepareAbort, CompleteCommit,
CompleteAbort).

JSON: [{"transactional_id","producer_id","state","coordinator"}].`,
		Example: `  strom transactions list
  strom transactions list --state Ongoing --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			ctx, adm, done, err := conn.adminFor(cmd)
			if err != nil {
				return err
			}
			defer done()
			if err := requireAPIs(ctx, adm, conn, "listing transactions", txnHint, 66); err != nil {
				return err
			}
			lt, err := adm.ListTransactions(ctx, pids, states)
			if err != nil {
				return conn.explain(err)
			}
			entries := []txnListEntry{}
			for _, l := range lt.Sorted() {
				entries = append(entries, txnListEntry{TransactionalID: l.TxnID, ProducerID: l.ProducerID, State: l.State, Coordinator: l.Coordinator})
			}
			if output == outJSON {
				return writeJSON(cmd.OutOrStdout(), entries)
			}
			t := newTable("TRANSACTIONAL-ID", "PRODUCER-ID", "STATE")
			for _, e := range entries {
				t.add(e.TransactionalID, e.ProducerID, e.State)
			}
			return t.write(cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringArrayVar(&states, "state", nil, "only transactions in this state (repeatable)")
	cmd.Flags().Int64SliceVar(&pids, "producer-id", nil, "only these producer ids (repeatable)")
	addOutputFlag(cmd, &output)
	return cmd
}

type txnDescription struct {
	TransactionalID string   `json:"transactional_id"`
	Coordinator     int32    `json:"coordinator"`
	ProducerID      int64    `json:"producer_id"`
	ProducerEpoch   int16    `json:"producer_epoch"`
	State           string   `json:"state"`
	TimeoutMs       int32    `json:"timeout_ms"`
	StartTimeMs     int64    `json:"start_time_ms"` // -1: nothing open
	DurationMs      int64    `json:"duration_ms"`   // -1: nothing open
	Partitions      []string `json:"partitions"`    // topic-partition
}

func txnDescribeCmd(conn *connFlags) *cobra.Command {
	var output string
	var flagIDs []string
	cmd := &cobra.Command{
		Use:   "describe TRANSACTIONAL-ID...",
		Short: "Show a transactional id's producer, state and open transaction",
		Long: `For each transactional id: the coordinator, producer id and epoch, the
state, the timeout, when the open transaction started and how long it has
run, and the partitions in it.

JSON: [{"transactional_id","coordinator","producer_id","producer_epoch",
  "state","timeout_ms","start_time_ms","duration_ms","partitions"}]
start_time_ms and duration_ms are -1 when nothing is open.`,
		Example: `  strom transactions describe my-app-tx
  strom transactions describe --transactional-id my-app-tx --output json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			ids, err := names(args, flagIDs, "transactional id", `"strom transactions describe my-app-tx"`)
			if err != nil {
				return err
			}
			if err := checkOutput(output); err != nil {
				return err
			}
			ctx, adm, done, err := conn.adminFor(cmd)
			if err != nil {
				return err
			}
			defer done()
			if err := requireAPIs(ctx, adm, conn, "describing transactions", txnHint, 65); err != nil {
				return err
			}
			dt, err := adm.DescribeTransactions(ctx, ids...)
			if err != nil {
				return conn.explain(err)
			}
			now := time.Now().UnixMilli()
			var descs []txnDescription
			for _, id := range ids {
				d, ok := dt[id]
				if !ok {
					return &problem{msg: fmt.Sprintf("transactional id %q: no answer from the cluster", id)}
				}
				if d.Err != nil {
					return explain(d.Err, conn.with(errContext{msg: "transactional id " + id}))
				}
				desc := txnDescription{
					TransactionalID: id, Coordinator: d.Coordinator, ProducerID: d.ProducerID, ProducerEpoch: d.ProducerEpoch,
					State: d.State, TimeoutMs: d.TimeoutMillis, StartTimeMs: -1, DurationMs: -1, Partitions: []string{},
				}
				if d.StartTimestamp >= 0 && d.State == "Ongoing" {
					desc.StartTimeMs, desc.DurationMs = d.StartTimestamp, max(0, now-d.StartTimestamp)
				}
				for _, tp := range d.Topics.Sorted() {
					for _, p := range tp.Partitions {
						desc.Partitions = append(desc.Partitions, fmt.Sprintf("%s-%d", tp.Topic, p))
					}
				}
				descs = append(descs, desc)
			}
			return writeDescriptions(cmd.OutOrStdout(), output, descs, printTxnDescription)
		},
	}
	cmd.Flags().StringArrayVar(&flagIDs, "transactional-id", nil, "transactional id to describe (repeatable; same as the arguments)")
	addOutputFlag(cmd, &output)
	return cmd
}

func printTxnDescription(w io.Writer, d txnDescription) {
	t := newTable("TRANSACTIONAL-ID", "PRODUCER-ID", "PRODUCER-EPOCH", "STATE", "TIMEOUT-MS", "START-TIME-MS", "DURATION-MS", "PARTITIONS")
	parts := strings.Join(d.Partitions, ",")
	if parts == "" {
		parts = "-"
	}
	t.add(d.TransactionalID, d.ProducerID, d.ProducerEpoch, d.State, d.TimeoutMs, offsetCell(d.StartTimeMs), offsetCell(d.DurationMs), parts)
	t.write(w)
}

func txnAbortCmd(conn *connFlags) *cobra.Command {
	var (
		topic            string
		partition        int32
		startOffset      int64
		producerID       int64
		producerEpoch    int16
		coordinatorEpoch int32
	)
	cmd := &cobra.Command{
		Use:   "abort",
		Short: "Abort a hanging transaction on one partition",
		Long: `Write an ABORT marker to one partition for a producer whose transaction
there never ended (its producer is gone and its coordinator lost track of
it), so the partition's last stable offset moves on and read_committed
consumers get past it. The transaction's records there are dropped.

Name the transaction by the offset it started at (--start-offset, as
"strom transactions describe-producers" shows it), or by its
producer (--producer-id and --producer-epoch, and --coordinator-epoch).
Only for hanging transactions: aborting one its coordinator still runs
cuts it in two.`,
		Example: `  strom transactions abort --topic orders --partition 0 --start-offset 4711
  strom transactions abort --topic orders --partition 0 --producer-id 1001 --producer-epoch 3`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if topic == "" || partition < 0 {
				return &problem{msg: "name the partition with --topic and --partition"}
			}
			if (startOffset < 0) == (producerID < 0) {
				return &problem{msg: "give either --start-offset or --producer-id (with --producer-epoch)"}
			}
			ctx, cancel := signalContext(cmd)
			defer cancel()
			cl, err := conn.client(ctx)
			if err != nil {
				return err
			}
			defer cl.Close()
			adm := kadm.NewClient(cl)
			if err := requireAPIs(ctx, adm, conn, "aborting transactions", txnHint, 27, 61); err != nil {
				return err
			}
			if startOffset >= 0 {
				dp, err := adm.DescribeProducers(ctx, kadm.TopicsSet{topic: {partition: {}}})
				if err != nil {
					return explain(err, conn.with(errContext{topic: topic}))
				}
				var found []kadm.DescribedProducer
				dp.EachProducer(func(p kadm.DescribedProducer) {
					if p.Topic == topic && p.Partition == partition && p.CurrentTxnStartOffset == startOffset {
						found = append(found, p)
					}
				})
				if len(found) != 1 {
					return &problem{msg: fmt.Sprintf("%s-%d: %d open transactions start at offset %d", topic, partition, len(found), startOffset),
						hint: fmt.Sprintf(`"strom transactions describe-producers --topic %s --partition %d" shows where open transactions start`, topic, partition)}
				}
				producerID, producerEpoch, coordinatorEpoch = found[0].ProducerID, found[0].ProducerEpoch, found[0].CoordinatorEpoch
			}
			req := kmsg.NewPtrWriteTxnMarkersRequest()
			m := kmsg.NewWriteTxnMarkersRequestMarker()
			m.ProducerID, m.ProducerEpoch, m.Committed, m.CoordinatorEpoch = producerID, producerEpoch, false, coordinatorEpoch
			m.Topics = []kmsg.WriteTxnMarkersRequestMarkerTopic{{Topic: topic, Partitions: []int32{partition}}}
			req.Markers = append(req.Markers, m)
			shards := cl.RequestSharded(ctx, req) // to the partition's leader
			sort.Slice(shards, func(i, j int) bool { return shards[i].Meta.NodeID < shards[j].Meta.NodeID })
			for _, sh := range shards {
				if sh.Err != nil {
					return explain(sh.Err, conn.with(errContext{topic: topic}))
				}
				resp := sh.Resp.(*kmsg.WriteTxnMarkersResponse)
				for _, rm := range resp.Markers {
					for _, rt := range rm.Topics {
						for _, rp := range rt.Partitions {
							if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
								return explain(err, conn.with(errContext{topic: topic}))
							}
						}
					}
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "aborted the transaction of producer %d (epoch %d) on %s-%d\n", producerID, producerEpoch, topic, partition)
			return nil
		},
	}
	cmd.Flags().StringVar(&topic, "topic", "", "the partition's topic")
	cmd.Flags().Int32Var(&partition, "partition", -1, "the partition")
	cmd.Flags().Int64Var(&startOffset, "start-offset", -1, "the offset the hanging transaction started at")
	cmd.Flags().Int64Var(&producerID, "producer-id", -1, "the transaction's producer id")
	cmd.Flags().Int16Var(&producerEpoch, "producer-epoch", 0, "the transaction's producer epoch")
	cmd.Flags().Int32Var(&coordinatorEpoch, "coordinator-epoch", 0, "the coordinator epoch of the transaction's markers")
	return cmd
}

type producerEntry struct {
	Topic                 string `json:"topic"`
	Partition             int32  `json:"partition"`
	ProducerID            int64  `json:"producer_id"`
	ProducerEpoch         int16  `json:"producer_epoch"`
	LastSequence          int32  `json:"last_sequence"`
	LastTimestamp         int64  `json:"last_timestamp"`
	CoordinatorEpoch      int32  `json:"coordinator_epoch"`
	CurrentTxnStartOffset int64  `json:"current_txn_start_offset"` // -1: none open
}

func txnProducersCmd(conn *connFlags) *cobra.Command {
	var output, topic string
	var partition int32
	cmd := &cobra.Command{
		Use:   "describe-producers",
		Short: "Show the producers a partition knows and where their open transactions start",
		Long: `The idempotent and transactional producers of one partition (all of a
topic's partitions without --partition): producer id and epoch, last
sequence and timestamp, and the offset its open transaction started at
("-" when none is open). A transaction open for long on a partition whose
producer is gone is a hanging one: "strom transactions abort" ends it.

JSON: [{"topic","partition","producer_id","producer_epoch","last_sequence",
  "last_timestamp","coordinator_epoch","current_txn_start_offset"}]`,
		Example: `  strom transactions describe-producers --topic orders --partition 0`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if topic == "" {
				return &problem{msg: "name the topic with --topic"}
			}
			if err := checkOutput(output); err != nil {
				return err
			}
			ctx, adm, done, err := conn.adminFor(cmd)
			if err != nil {
				return err
			}
			defer done()
			if err := requireAPIs(ctx, adm, conn, "describing producers", txnHint, 61); err != nil {
				return err
			}
			set := kadm.TopicsSet{}
			if partition >= 0 {
				set.Add(topic, partition)
			} else {
				md, err := adm.Metadata(ctx, topic)
				if err != nil {
					return explain(err, conn.with(errContext{topic: topic}))
				}
				td, ok := md.Topics[topic]
				if !ok || td.Err != nil {
					return explain(td.Err, conn.with(errContext{topic: topic}))
				}
				for p := range td.Partitions {
					set.Add(topic, p)
				}
			}
			dp, err := adm.DescribeProducers(ctx, set)
			if err != nil {
				return explain(err, conn.with(errContext{topic: topic}))
			}
			entries := []producerEntry{}
			var firstErr error
			dp.EachPartition(func(p kadm.DescribedProducersPartition) {
				if p.Err != nil && firstErr == nil {
					firstErr = p.Err
				}
			})
			if firstErr != nil {
				return explain(firstErr, conn.with(errContext{topic: topic}))
			}
			dp.EachProducer(func(p kadm.DescribedProducer) {
				entries = append(entries, producerEntry{
					Topic: p.Topic, Partition: p.Partition, ProducerID: p.ProducerID, ProducerEpoch: p.ProducerEpoch,
					LastSequence: p.LastSequence, LastTimestamp: p.LastTimestamp, CoordinatorEpoch: p.CoordinatorEpoch,
					CurrentTxnStartOffset: p.CurrentTxnStartOffset,
				})
			})
			sort.Slice(entries, func(i, j int) bool {
				a, b := entries[i], entries[j]
				if a.Partition != b.Partition {
					return a.Partition < b.Partition
				}
				return a.ProducerID < b.ProducerID
			})
			if output == outJSON {
				return writeJSON(cmd.OutOrStdout(), entries)
			}
			t := newTable("TOPIC", "PARTITION", "PRODUCER-ID", "PRODUCER-EPOCH", "LAST-SEQUENCE", "LAST-TIMESTAMP", "TXN-START-OFFSET")
			for _, e := range entries {
				t.add(e.Topic, e.Partition, e.ProducerID, e.ProducerEpoch, e.LastSequence, e.LastTimestamp, offsetCell(e.CurrentTxnStartOffset))
			}
			return t.write(cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&topic, "topic", "", "the topic")
	cmd.Flags().Int32Var(&partition, "partition", -1, "one partition (default: all of the topic's)")
	addOutputFlag(cmd, &output)
	return cmd
}
