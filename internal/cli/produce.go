package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

type produceFlags struct {
	topics       []string
	file         string
	delimiter    string
	keySep       string
	key          string
	headers      []string
	parseHeaders bool
	headersDelim string
	headerSep    string
	headerKVSep  string
	partition    int32
	compression  string
	acks         string
	verbose      bool
	reportFormat string
	maxLine      int
	linger       time.Duration
	properties   []string
}

func newProduceCmd() *cobra.Command {
	conn := &connFlags{}
	pf := &produceFlags{}
	cmd := &cobra.Command{
		Use:   "produce TOPIC",
		Short: "Produce records to a topic, one per line of stdin or a file",
		Long: `Read lines from stdin (or --file) and produce each as one record, as
kafka-console-producer.sh and kcat -P do. Lines are bytes: nothing is
trimmed or decoded, and the newline is not part of the record.

Keys and headers can be parsed from each line:
  --key-separator :          "user1:{...}" → key user1, value {...} (kcat -K)
  --parse-headers            "a=1,b=2<TAB>rest" → headers a=1 and b=2
A line without the key separator has no key and the whole line as value.

The records are sent asynchronously in batches, with at most --max-buffered
records in flight, so a pipe is read at full speed. At the end (EOF, or
Ctrl-C) every buffered record is flushed; the exit status is non-zero if
any record failed. The topic is created if the cluster auto-creates
topics. Kafka's --property parse.key=true, key.separator=... and
parse.headers=true work too.`,
		Example: `  echo hello | strom produce greetings
  strom produce quickstart-events --bootstrap-server localhost:9092   # type lines, Ctrl-D to end
  printf 'user1:{"score":10}\nuser2:{"score":7}\n' | strom produce game-events -K:
  strom produce orders --file orders.jsonl --header source=import --compression zstd -v
  seq 1000000 | strom produce numbers --acks 1`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runProduce(cmd, args, conn, pf)
		},
	}
	f := cmd.Flags()
	conn.register(f)
	f.StringArrayVarP(&pf.topics, "topic", "t", nil, "topic to produce to (same as the argument)")
	f.StringVarP(&pf.file, "file", "f", "", "read lines from this file instead of stdin")
	f.StringVarP(&pf.delimiter, "delimiter", "D", "", `record delimiter: one byte, escapes \n \t \0 allowed; default \n`)
	f.StringVarP(&pf.keySep, "key-separator", "K", "", "split each line into key and value at the first occurrence of this")
	f.StringVarP(&pf.key, "key", "k", "", "key for every record")
	f.StringArrayVarP(&pf.headers, "header", "H", nil, "header name=value added to every record (repeatable)")
	f.BoolVar(&pf.parseHeaders, "parse-headers", false, "parse headers from the start of each line, up to --headers-delimiter")
	f.StringVar(&pf.headersDelim, "headers-delimiter", "", `with --parse-headers: what ends the headers on a line; default \t`)
	f.StringVar(&pf.headerSep, "header-separator", ",", "with --parse-headers: what separates headers")
	f.StringVar(&pf.headerKVSep, "header-key-separator", "=", "with --parse-headers: what separates a header's name and value")
	f.Int32VarP(&pf.partition, "partition", "p", -1, "produce every record to this partition; -1 spreads them (by key hash when keyed)")
	f.StringVarP(&pf.compression, "compression", "z", "none", "none, gzip, snappy, lz4 or zstd")
	f.StringVar(&pf.acks, "acks", "all", "all (-1), 1 or 0; all also makes the producer idempotent")
	f.BoolVarP(&pf.verbose, "verbose", "v", false, "print a delivery report per record on stdout and a summary on stderr")
	f.StringVar(&pf.reportFormat, "report-format", "", `with -v: the delivery report, in consume's --format tokens; default "delivered to %t [%p] at offset %o\n"`)
	f.IntVar(&pf.maxLine, "max-line-bytes", 1<<20, "longest line accepted")
	f.DurationVar(&pf.linger, "linger", 10*time.Millisecond, "how long to wait to fill a batch")
	f.StringArrayVar(&pf.properties, "property", nil, "kafka-console-producer property: parse.key, key.separator, parse.headers, headers.delimiter, headers.separator, headers.key.separator")
	return kafkaCommand(cmd)
}

// lineParser turns a line into a record, copying the bytes it keeps into
// a slab: the reader's buffer is reused, the record lives until delivered.
type lineParser struct {
	topic        string
	partition    int32
	keySep       []byte
	key          []byte
	static       []kgo.RecordHeader
	parseHeaders bool
	headersDelim []byte
	headerSep    []byte
	headerKVSep  []byte

	slab []byte
	recs []kgo.Record
}

func (p *lineParser) copy(b []byte) []byte {
	if len(b) > cap(p.slab)-len(p.slab) {
		p.slab = make([]byte, 0, max(1<<20, len(b)))
	}
	n := len(p.slab)
	p.slab = append(p.slab, b...)
	return p.slab[n:len(p.slab):len(p.slab)]
}

func (p *lineParser) record(line []byte) *kgo.Record {
	if len(p.recs) == 0 {
		p.recs = make([]kgo.Record, 1024)
	}
	r := &p.recs[0]
	p.recs = p.recs[1:]
	r.Topic, r.Partition = p.topic, p.partition
	if p.parseHeaders {
		if i := indexOf(line, p.headersDelim); i >= 0 {
			for _, h := range splitAll(line[:i], p.headerSep) {
				if len(h) == 0 {
					continue
				}
				var rh kgo.RecordHeader
				if j := indexOf(h, p.headerKVSep); j >= 0 {
					rh.Key, rh.Value = string(h[:j]), p.copy(h[j+len(p.headerKVSep):])
				} else {
					rh.Key = string(h)
				}
				r.Headers = append(r.Headers, rh)
			}
			line = line[i+len(p.headersDelim):]
		}
	}
	if len(r.Headers) == 0 {
		r.Headers = p.static // shared: kgo never modifies headers
	} else {
		r.Headers = append(r.Headers, p.static...)
	}
	r.Key = p.key
	if len(p.keySep) > 0 {
		if i := indexOf(line, p.keySep); i >= 0 {
			r.Key = p.copy(line[:i])
			line = line[i+len(p.keySep):]
		}
	}
	r.Value = p.copy(line)
	return r
}

func runProduce(cmd *cobra.Command, args []string, conn *connFlags, pf *produceFlags) error {
	topics, err := names(args, pf.topics, "topic", `"strom produce orders"`)
	if err != nil {
		return err
	}
	if len(topics) > 1 {
		return usageErr("produce writes to one topic; got %d (%s)", len(topics), strings.Join(topics, ", "))
	}
	lp, err := pf.parser(topics[0])
	if err != nil {
		return err
	}
	delim, err := unescape(orDefault(pf.delimiter, `\n`))
	if err != nil || len(delim) != 1 {
		return usageErr(`--delimiter %q: want one byte, e.g. \n or \0`, pf.delimiter)
	}
	report, err := ParseFormat(orDefault(pf.reportFormat, `delivered to %t [%p] at offset %o\n`))
	if err != nil {
		return usageErr("--report-format: %v", err)
	}
	if pf.maxLine <= 0 {
		return usageErr("--max-line-bytes %d: want at least 1", pf.maxLine)
	}
	opts, err := pf.kgoOpts(conn)
	if err != nil {
		return err
	}
	var in io.Reader = cmd.InOrStdin()
	if pf.file != "" && pf.file != "-" {
		f, err := os.Open(pf.file)
		if err != nil {
			return &problem{msg: "--file: " + unwrapPathErr(err).Error()}
		}
		defer f.Close()
		in = f
	}

	if f, ok := in.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			fmt.Fprintf(cmd.ErrOrStderr(), "strom: producing to %s: type one record per line, end with Ctrl-D\n", lp.topic)
		}
	}
	ctx, cancel := signalContext(cmd)
	defer cancel()
	cl, err := conn.client(ctx, opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	if pf.partition >= 0 {
		if err := checkPartition(ctx, cl, conn, lp.topic, pf.partition); err != nil {
			return err
		}
	}

	var (
		mu       sync.Mutex
		produced int64
		failed   int64
		firstErr error
		bigSize  int // bytes of key and value of the largest record refused as too large
		buf      []byte
		out      = cmd.OutOrStdout()
	)
	promise := func(r *kgo.Record, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			failed++
			if firstErr == nil {
				firstErr = err
			}
			if tooLarge(err) {
				bigSize = max(bigSize, len(r.Key)+len(r.Value))
			}
			return
		}
		produced++
		if pf.verbose {
			buf = report.Append(buf[:0], r)
			out.Write(buf)
		}
	}

	chunks := make(chan []*kgo.Record, 4)
	readErr := make(chan error, 1)
	go func() {
		defer close(chunks)
		readErr <- readRecords(in, delim[0], pf.maxLine, lp, chunks, ctx.Done())
	}()
	// Produce with a context that is never cancelled: after Ctrl-C we stop
	// reading but still deliver what was read.
	pctx := context.Background()
	var sent int64
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case chunk, ok := <-chunks:
			if !ok {
				break loop
			}
			for _, r := range chunk {
				cl.Produce(pctx, r, promise)
			}
			sent += int64(len(chunk))
		}
	}
	var rerr error
	if ctx.Err() == nil {
		rerr = <-readErr
	}
	fctx, fcancel := context.WithTimeout(context.Background(), conn.timeout)
	defer fcancel()
	if err := cl.Flush(fctx); err != nil {
		cl.Close() // fails what is still buffered, through the promise
	}
	mu.Lock()
	defer mu.Unlock()
	if pf.verbose {
		fmt.Fprintf(cmd.ErrOrStderr(), "strom: produced %d records to %s\n", produced, lp.topic)
	}
	if failed > 0 {
		p := explain(firstErr, conn.with(errContext{topic: lp.topic})).(*problem)
		if errors.Is(firstErr, kerr.ClusterAuthorizationFailed) {
			// The one cluster permission a producer needs.
			p = &problem{msg: "not authorized to produce idempotently", hint: "ask for the IdempotentWrite ACL on the cluster, or produce with --acks 1"}
		}
		if tooLarge(firstErr) {
			p = tooLargeProblem(conn, lp.topic, bigSize)
		}
		return &problem{msg: fmt.Sprintf("%d of %d records failed: %s", failed, sent, p.msg), hint: p.hint, err: firstErr}
	}
	return rerr
}

// readRecords reads delimited records and sends them in chunks: full
// chunks while input is waiting, and at once when the reader would block,
// so that a typed line goes out when Enter is pressed.
func readRecords(in io.Reader, delim byte, maxLine int, lp *lineParser, chunks chan<- []*kgo.Record, stop <-chan struct{}) error {
	const chunkSize = 512
	br := bufio.NewReaderSize(in, 256<<10)
	chunk := make([]*kgo.Record, 0, chunkSize)
	send := func() bool {
		if len(chunk) == 0 {
			return true
		}
		select {
		case chunks <- chunk:
			chunk = make([]*kgo.Record, 0, chunkSize)
			return true
		case <-stop:
			return false
		}
	}
	var long []byte
	for n := 1; ; n++ {
		line, err := readLine(br, delim, maxLine, &long)
		if errors.Is(err, errLineTooLong) {
			send()
			return &problem{msg: fmt.Sprintf("line %d is longer than %d bytes", n, maxLine), hint: "raise --max-line-bytes"}
		}
		if err != nil && err != io.EOF {
			send()
			return &problem{msg: "reading input: " + err.Error()}
		}
		if err == nil || len(line) > 0 {
			chunk = append(chunk, lp.record(line))
		}
		if err == io.EOF {
			send()
			return nil
		}
		if (len(chunk) == chunkSize || br.Buffered() == 0) && !send() {
			return nil
		}
	}
}

var errLineTooLong = errors.New("line too long")

// readLine returns the next line without its delimiter. The slice is
// valid until the next call. At the end it returns io.EOF with any last
// line that had no delimiter.
func readLine(br *bufio.Reader, delim byte, maxLine int, long *[]byte) ([]byte, error) {
	*long = (*long)[:0]
	for {
		frag, err := br.ReadSlice(delim)
		if err == bufio.ErrBufferFull {
			*long = append(*long, frag...)
			if len(*long) > maxLine {
				return nil, errLineTooLong
			}
			continue
		}
		if len(*long) > 0 {
			*long = append(*long, frag...)
			frag = *long
		}
		if err == nil {
			frag = frag[:len(frag)-1]
		}
		if len(frag) > maxLine {
			return nil, errLineTooLong
		}
		return frag, err
	}
}

func tooLarge(err error) bool {
	return errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.RecordListTooLarge)
}

// tooLargeProblem says what was too large for what limit: the topic's
// max.message.bytes, looked up now (the error code does not carry it).
func tooLargeProblem(conn *connFlags, topic string, size int) *problem {
	p := &problem{msg: "record too large for the topic", hint: "raise the topic's max.message.bytes, or send smaller records"}
	if size > 0 {
		p.msg = fmt.Sprintf("a record of %d bytes is too large for topic %s", size, topic)
	}
	ctx, cancel := context.WithTimeout(context.Background(), conn.timeout)
	defer cancel()
	cl, err := conn.client(ctx)
	if err != nil {
		return p
	}
	defer cl.Close()
	rcs, err := kadm.NewClient(cl).DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return p
	}
	rc, err := rcs.On(topic, nil)
	if err != nil || rc.Err != nil {
		return p
	}
	for _, c := range rc.Configs {
		if c.Key == "max.message.bytes" && c.Value != nil {
			p.msg += fmt.Sprintf(": its max.message.bytes is %s (a batch of records, with its headers, must fit)", *c.Value)
			p.hint = fmt.Sprintf(`raise it ("strom topic alter-config %s --set max.message.bytes=N"), or send smaller records`, topic)
		}
	}
	return p
}
