package compat

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// captureSeedsEnv names the environment variable that turns on
// TestCaptureFuzzSeeds.
const captureSeedsEnv = "STROM_CAPTURE_SEEDS"

// seedsPerVersion is how many frames are kept per client, API key and
// version.
const seedsPerVersion = 3

// fuzzCorpusDir is the corpus of internal/kafka/server's FuzzRequestFrame,
// from this package's directory.
var fuzzCorpusDir = filepath.Join("..", "..", "internal", "kafka", "server", "testdata", "fuzz", "FuzzRequestFrame")

// TestCaptureFuzzSeeds records the request frames real clients send and
// writes a selection of them as seeds of internal/kafka/server's
// FuzzRequestFrame, so that the fuzzer starts from what kcat,
// confluent-kafka-python, KafkaJS, kafka-node and franz-go really send
// rather than only from frames kmsg encodes.
//
// It starts Strom advertising the address of a recording proxy
// (proxy_test.go) in front of it, so that clients keep talking through the
// proxy after bootstrap, and drives each client in turn with the workloads
// of the compat tests. For every client, API key and version it keeps up to
// seedsPerVersion distinct frames (spread over their lengths), none over
// 64 KiB, as capture-<client>-k<key>-v<version>-<n>, the frame without its
// size prefix. Each run replaces the capture files of the clients it ran;
// a client that is not installed keeps its old files.
//
// Regenerate the seeds, and replay them, with
//
//	make deps
//	STROM_CAPTURE_SEEDS=1 go test -count=1 -v -run TestCaptureFuzzSeeds ./test/compat
//	go test -run FuzzRequestFrame ./internal/kafka/server
//
// The frames hold topic names, timestamps and producer ids of the run, so
// every run rewrites the files; commit them when the clients or their
// workloads change.
func TestCaptureFuzzSeeds(t *testing.T) {
	if os.Getenv(captureSeedsEnv) != "1" {
		t.Skipf("writes fuzz seeds; run with %s=1 go test -count=1 -v -run TestCaptureFuzzSeeds ./test/compat", captureSeedsEnv)
	}
	if ext := os.Getenv(externalBrokerEnv); ext != "" {
		t.Skipf("captures need the in-process Strom advertising the proxy, not $%s=%s", externalBrokerEnv, ext)
	}
	proxy := listenProxy(t)
	proxy.serve(startBroker(t, withAdvertisedAddr(proxy.addr())))

	captured := map[string]bool{}
	for _, c := range []struct {
		client string
		run    func(t *testing.T, p *recordingProxy)
	}{
		{"kcat", captureKcat},
		{"confluent-python", captureConfluentPython},
		{"kafkajs", captureNode("kafkajs", "kafkajs")},
		{"kafka-node", captureNode("kafka-node", "kafkanode")},
		{"franz-go", captureFranzGo},
	} {
		t.Run(c.client, func(t *testing.T) {
			c.run(t, proxy)
			// Reached only when the workload neither failed nor
			// skipped.
			captured[c.client] = true
		})
	}

	frames, skipped := proxy.captured()
	byClient := map[string][]capturedFrame{}
	for _, f := range frames {
		byClient[f.client] = append(byClient[f.client], f)
	}
	var clients []string
	for client := range captured {
		if len(byClient[client]) == 0 {
			t.Errorf("%s: no frames went through the proxy", client)
			continue
		}
		clients = append(clients, client)
	}
	slices.Sort(clients)

	allPairs := map[[2]int16]bool{}
	for _, client := range clients {
		written, pairs := writeSeeds(t, client, byClient[client])
		var kv []string
		for _, p := range pairs {
			allPairs[p] = true
			kv = append(kv, fmt.Sprintf("%d/v%d", p[0], p[1]))
		}
		t.Logf("%s: %d frames captured (%d over %d bytes left out), %d key/version pairs, %d seeds written: %s",
			client, len(byClient[client]), skipped[client], maxCapturedFrame, len(pairs), written, strings.Join(kv, " "))
	}
	t.Logf("%d distinct key/version pairs over %d clients", len(allPairs), len(clients))
}

// writeSeeds replaces client's capture files in the fuzz corpus with up to
// seedsPerVersion frames per key and version, and returns how many it
// wrote and the (key, version) pairs, sorted.
func writeSeeds(t *testing.T, client string, frames []capturedFrame) (written int, pairs [][2]int16) {
	t.Helper()
	if err := os.MkdirAll(fuzzCorpusDir, 0o755); err != nil {
		t.Fatal(err)
	}
	old, err := filepath.Glob(filepath.Join(fuzzCorpusDir, "capture-"+client+"-k*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range old {
		if err := os.Remove(name); err != nil {
			t.Fatal(err)
		}
	}

	byPair := map[[2]int16][][]byte{}
	for _, f := range frames {
		key, version, ok := f.keyVersion()
		if !ok {
			t.Errorf("%s sent a %d-byte frame, too short for a request header", client, len(f.frame))
			continue
		}
		p := [2]int16{key, version}
		if byPair[p] == nil {
			pairs = append(pairs, p)
		}
		byPair[p] = append(byPair[p], f.frame)
	}
	slices.SortFunc(pairs, func(a, b [2]int16) int {
		return cmp.Or(cmp.Compare(a[0], b[0]), cmp.Compare(a[1], b[1]))
	})
	for _, p := range pairs {
		for i, frame := range pickVaried(byPair[p], seedsPerVersion) {
			name := fmt.Sprintf("capture-%s-k%d-v%d-%d", client, p[0], p[1], i+1)
			// Go's corpus file format, as `go test -fuzz` writes it.
			content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", frame)
			if err := os.WriteFile(filepath.Join(fuzzCorpusDir, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			written++
		}
	}
	return written, pairs
}

// pickVaried returns up to n of frames, preferring variety: frames that
// differ only in their correlation id count once, and the picks spread over
// the distinct lengths (shortest, longest, middle, then the others) before
// a second frame of any length is taken.
func pickVaried(frames [][]byte, n int) [][]byte {
	seen := map[string]bool{}
	var uniq [][]byte
	for _, f := range frames {
		id := string(f)
		if len(f) >= 8 {
			id = string(f[:4]) + string(f[8:]) // key, version, then past the correlation id
		}
		if !seen[id] {
			seen[id] = true
			uniq = append(uniq, f)
		}
	}
	slices.SortStableFunc(uniq, func(a, b []byte) int { return cmp.Compare(len(a), len(b)) })

	var firsts, rest [][]byte // the first frame of each length; the others
	for i, f := range uniq {
		if i == 0 || len(uniq[i-1]) != len(f) {
			firsts = append(firsts, f)
		} else {
			rest = append(rest, f)
		}
	}
	order := make([]int, 0, len(firsts))
	for _, i := range []int{0, len(firsts) - 1, len(firsts) / 2} {
		if i >= 0 && !slices.Contains(order, i) {
			order = append(order, i)
		}
	}
	for i := range firsts {
		if !slices.Contains(order, i) {
			order = append(order, i)
		}
	}
	var picked [][]byte
	for _, i := range order {
		picked = append(picked, firsts[i])
	}
	picked = append(picked, rest...)
	return picked[:min(n, len(picked))]
}

// captureKcat runs TestKcat's and TestKcatGroup's workloads: metadata,
// produce and consume with every codec and headers, offsets by time, the
// legacy protocol of a 0.9 broker (no ApiVersions, MessageSet v0), and a
// balanced consumer that commits.
func captureKcat(t *testing.T, p *recordingProxy) {
	kcat := requireTool(t, "kcat")
	addr := p.addr()
	input, recs := kcatFixture(t)

	// Topics are created first, by franz-go, before the recording starts.
	groupTopic := uniqueTopic("capture-kcat-group")
	createTopic(t, addr, groupTopic, 3)
	codecTopics := map[string]string{}
	for _, codec := range kcatCodecs {
		codecTopics[codec] = uniqueTopic("capture-kcat-" + codec)
		createTopic(t, addr, codecTopics[codec], 1)
	}
	legacyCodecs := []string{"none", "gzip", "snappy"}
	legacyTopics := map[string]string{}
	for _, codec := range legacyCodecs {
		legacyTopics[codec] = uniqueTopic("capture-kcat-legacy-" + codec)
		createTopic(t, addr, legacyTopics[codec], 1)
	}

	defer p.record("kcat")()

	// The broker must advertise the proxy, or everything after the
	// bootstrap would bypass it.
	var md kcatMetadata
	out := mustRun(t, "", kcat, "-b", addr, "-L", "-J")
	if err := json.Unmarshal(out, &md); err != nil {
		t.Fatalf("kcat -L -J output is not JSON: %v\n%s", err, out)
	}
	if len(md.Brokers) != 1 || md.Brokers[0].Name != addr {
		t.Fatalf("brokers = %+v, want one named %s, the proxy", md.Brokers, addr)
	}
	mustRun(t, "", kcat, "-b", addr, "-L", "-t", groupTopic)

	consume := func(topic, format string) []string {
		return []string{"-b", addr, "-C", "-t", topic, "-p", "0", "-o", "beginning", "-e", "-q", "-f", format}
	}
	for _, codec := range kcatCodecs {
		topic := codecTopics[codec]
		args := []string{"-b", addr, "-P", "-t", topic, "-p", "0", "-K", ":", "-z", codec, "-X", "linger.ms=100"}
		for _, h := range kcatHeaders {
			args = append(args, "-H", h)
		}
		mustRun(t, input, kcat, args...)
		out := mustRun(t, "", kcat, consume(topic, "%p|%o|%k|%s|%h\n")...)
		compareLines(t, string(out), kcatExpected(recs, strings.Join(kcatHeaders, ",")))
	}

	for _, ts := range []int64{-1, -2, time.Now().Add(-time.Hour).UnixMilli()} {
		mustRun(t, "", kcat, "-b", addr, "-Q", "-t", fmt.Sprintf("%s:0:%d", codecTopics["none"], ts))
	}

	legacy := []string{"-X", "api.version.request=false", "-X", "broker.version.fallback=0.9.0"}
	want := kcatExpected(recs, "")
	for i := range want {
		want[i] = strings.TrimSuffix(want[i], "|")
	}
	for _, codec := range legacyCodecs {
		topic := legacyTopics[codec]
		mustRun(t, input, kcat, slices.Concat(legacy, []string{"-b", addr, "-P", "-t", topic, "-p", "0", "-K", ":", "-z", codec, "-X", "linger.ms=100"})...)
		out := mustRun(t, "", kcat, slices.Concat(legacy, consume(topic, "%p|%o|%k|%s\n"))...)
		compareLines(t, string(out), want)
	}

	var lines []string
	for part := range 3 {
		var in strings.Builder
		for i := range 10 {
			v := fmt.Sprintf("p%d-%d", part, i)
			in.WriteString(v + "\n")
			lines = append(lines, fmt.Sprintf("%d|%s", part, v))
		}
		mustRun(t, in.String(), kcat, "-b", addr, "-P", "-t", groupTopic, "-p", strconv.Itoa(part))
	}
	out = mustRun(t, "", kcat, "-b", addr, "-G", "capture-kcat-"+groupTopic, "-e", "-q",
		"-X", "auto.offset.reset=earliest", "-X", "session.timeout.ms=6000", "-f", "%p|%s\n", groupTopic)
	got := strings.Split(strings.TrimSpace(string(out)), "\n")
	slices.Sort(got)
	slices.Sort(lines)
	if !slices.Equal(got, lines) {
		t.Fatalf("kcat -G read:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(lines, "\n"))
	}
}

// captureConfluentPython runs the confluent-kafka-python scripts of
// TestPythonConfluent and TestPythonConfluentGroup (without the restart).
func captureConfluentPython(t *testing.T, p *recordingProxy) {
	python := requireTool(t, debianPython)
	if r := runClient(t, "", python, "-c", "import confluent_kafka"); r.err != nil {
		missing(t, "python3-confluent-kafka is not importable by "+debianPython+": "+tail(r.stderr, 300))
	}
	defer p.record("confluent-python")()
	runScript(t, python, "python/confluent_roundtrip.py", p.addr(), uniqueTopic("capture-python"))
	topic := uniqueTopic("capture-python-group")
	runScriptArgs(t, python, "python/confluent_group.py", p.addr(), topic, "split")
	runScriptArgs(t, python, "python/confluent_group.py", p.addr(), topic, "resume")
}

// captureNode returns a capture that runs the Node client's roundtrip and
// group scripts (those of TestNodeKafkaJS and TestNodeKafkaJSGroup, or of
// the kafka-node ones): script names are <prefix>_roundtrip.js and
// <prefix>_group.js.
func captureNode(pkg, prefix string) func(*testing.T, *recordingProxy) {
	return func(t *testing.T, p *recordingProxy) {
		node, roundtrip := nodeScript(t, prefix+"_roundtrip.js", pkg)
		_, group := nodeScript(t, prefix+"_group.js", pkg)
		defer p.record(pkg)()
		runScript(t, node, roundtrip, p.addr(), uniqueTopic("capture-"+prefix))
		runScript(t, node, group, p.addr(), uniqueTopic("capture-"+prefix+"-group"))
	}
}

// captureFranzGo drives franz-go: kadm's topic, config, offset and group
// calls; idempotent producers with every codec and a plain acks=1 one; a
// classic group consumer and a KIP-848 one; a direct partition consumer.
func captureFranzGo(t *testing.T, p *recordingProxy) {
	defer p.record("franz-go")()
	addr := p.addr()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	check := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	adm := kadm.NewClient(newClient(t, addr))
	topic := uniqueTopic("capture-franz-go")
	other := uniqueTopic("capture-franz-go-admin")

	_, err := adm.ApiVersions(ctx)
	check("ApiVersions", err)
	created, err := adm.CreateTopics(ctx, 3, 1, map[string]*string{"retention.ms": strp("86400000")}, topic, other)
	check("CreateTopics", cmp.Or(err, created.Error()))
	_, err = adm.ListTopics(ctx)
	check("ListTopics", err)
	_, err = adm.BrokerMetadata(ctx)
	check("BrokerMetadata", err)
	described, err := adm.DescribeTopicConfigs(ctx, topic)
	check("DescribeTopicConfigs", err)
	if _, err := described.On(topic, nil); err != nil {
		t.Fatalf("DescribeTopicConfigs %s: %v", topic, err)
	}
	_, err = adm.DescribeBrokerConfigs(ctx)
	check("DescribeBrokerConfigs", err)
	alter := func(what string, rs kadm.AlterConfigsResponses, err error) {
		t.Helper()
		for _, r := range rs {
			err = cmp.Or(err, r.Err)
		}
		check(what, err)
	}
	rs, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: strp("172800000")}}, topic)
	alter("AlterTopicConfigs (incremental)", rs, err)
	rs, err = adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{{Name: "cleanup.policy", Value: strp("delete")}}, other)
	alter("AlterTopicConfigsState", rs, err)
	parts, err := adm.CreatePartitions(ctx, 1, other)
	check("CreatePartitions", cmp.Or(err, parts.Error()))

	// Produce: idempotent (the default) with every codec, then acks=1.
	const perProducer = 12
	produced := 0
	codecs := []kgo.CompressionCodec{kgo.NoCompression(), kgo.GzipCompression(), kgo.SnappyCompression(), kgo.Lz4Compression(), kgo.ZstdCompression()}
	produce := func(label string, opts ...kgo.Opt) {
		t.Helper()
		cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(50 * time.Millisecond)}, opts...)...)
		check("producer client", err)
		defer cl.Close()
		var rs []*kgo.Record
		for i := range perProducer {
			rs = append(rs, &kgo.Record{
				Key:     fmt.Appendf(nil, "key-%d", i%4),
				Value:   fmt.Appendf(nil, "%s value %d", label, i),
				Headers: []kgo.RecordHeader{{Key: "producer", Value: []byte(label)}},
			})
		}
		check("produce "+label, cl.ProduceSync(ctx, rs...).FirstErr())
		produced += len(rs)
	}
	for i, codec := range codecs {
		produce(fmt.Sprintf("codec-%d", i), kgo.ProducerBatchCompression(codec))
	}
	produce("acks-1", kgo.DisableIdempotentWrite(), kgo.RequiredAcks(kgo.LeaderAck()))

	// Consume: a classic group, a KIP-848 group, and partitions directly.
	consume := func(label string, group bool, opts ...kgo.Opt) {
		t.Helper()
		cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.FetchMaxWait(200 * time.Millisecond)}, opts...)...)
		check("consumer client", err)
		defer cl.Close()
		got := 0
		for got < produced {
			fs := cl.PollFetches(ctx)
			if err := ctx.Err(); err != nil {
				t.Fatalf("%s: read %d of %d records: %v", label, got, produced, err)
			}
			for _, fe := range fs.Errors() {
				t.Fatalf("%s: %s-%d: %v", label, fe.Topic, fe.Partition, fe.Err)
			}
			got += fs.NumRecords()
		}
		if got != produced {
			t.Fatalf("%s: read %d records, want %d", label, got, produced)
		}
		if group {
			check(label+": commit", cl.CommitUncommittedOffsets(ctx))
		}
	}
	classic, nextGen := "capture-franz-go-classic-"+topic, "capture-franz-go-848-"+topic
	consume("classic group", true, kgo.ConsumerGroup(classic), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	consume("KIP-848 group", true, kgo.ConsumerGroup(nextGen), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit(),
		kgo.ServerSideBalancer(), kgo.Balancers(kgo.RangeBalancer()))
	start := map[int32]kgo.Offset{}
	for part := range int32(3) {
		start[part] = kgo.NewOffset().AtStart()
	}
	consume("partitions", false, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: start}))

	// Offsets and groups.
	_, err = adm.ListStartOffsets(ctx, topic)
	check("ListStartOffsets", err)
	ends, err := adm.ListEndOffsets(ctx, topic)
	check("ListEndOffsets", cmp.Or(err, ends.Error()))
	_, err = adm.ListOffsetsAfterMilli(ctx, time.Now().Add(-time.Minute).UnixMilli(), topic)
	check("ListOffsetsAfterMilli", err)
	var epochs kadm.OffsetForLeaderEpochRequest
	epochs.Add(topic, 0, 0)
	_, err = adm.OffsetForLeaderEpoch(ctx, epochs)
	check("OffsetForLeaderEpoch", err)
	_, err = adm.ListGroups(ctx)
	check("ListGroups", err)
	dg, err := adm.DescribeGroups(ctx, classic)
	check("DescribeGroups", cmp.Or(err, dg.Error()))
	dcg, err := adm.DescribeConsumerGroups(ctx, nextGen)
	check("DescribeConsumerGroups", cmp.Or(err, dcg.Error()))
	fetched, err := adm.FetchOffsets(ctx, classic)
	check("FetchOffsets", cmp.Or(err, fetched.Error()))
	_, err = adm.Lag(ctx, classic)
	check("Lag", err)
	check("FindGroupCoordinators", adm.FindGroupCoordinators(ctx, classic).Error())
	var commit kadm.Offsets
	commit.AddOffset(topic, 0, 1, -1)
	committed, err := adm.CommitOffsets(ctx, classic, commit)
	check("CommitOffsets", cmp.Or(err, committed.Error()))
	deleted, err := adm.DeleteOffsets(ctx, classic, kadm.TopicsSet{topic: {1: {}}})
	check("DeleteOffsets", cmp.Or(err, deleted.Error()))
	// Trim the first record of a partition that has one.
	var trim kadm.Offsets
	ends.Each(func(o kadm.ListedOffset) {
		if len(trim) == 0 && o.Offset > 0 {
			trim.AddOffset(o.Topic, o.Partition, 1, -1)
		}
	})
	trimmed, err := adm.DeleteRecords(ctx, trim)
	check("DeleteRecords", cmp.Or(err, trimmed.Error()))
	_, err = adm.DescribeAllLogDirs(ctx, nil)
	check("DescribeAllLogDirs", err)
	groups, err := adm.DeleteGroups(ctx, classic, nextGen)
	check("DeleteGroups", cmp.Or(err, groups.Error()))
	dropped, err := adm.DeleteTopics(ctx, other)
	check("DeleteTopics", cmp.Or(err, dropped.Error()))
}
