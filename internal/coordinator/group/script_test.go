package group

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stromhq/strom/internal/partition"
	"github.com/stromhq/strom/internal/storage/cleaner"
	"github.com/stromhq/strom/internal/storage/seglog"
	"github.com/stromhq/strom/internal/storage/vfs/memfs"
)

// The coordinator's state machine is tested by scripts in testdata/*.txt,
// run in a testing/synctest bubble so that session timeouts, rebalance
// timeouts and offset retention happen in fake time, instantly and
// deterministically (etcd raft's interaction tests, cockroachdb's
// datadriven). Each entry is one command, "----", and the output it must
// produce; a blank line ends the output. `go test -run TestScripts
// -rewrite` rewrites the expected outputs from what the code does.
//
// Requests are asynchronous, as on the wire: after each command the script
// waits until every goroutine of the bubble is blocked (synctest.Wait) and
// prints every answer that arrived, in the order the requests were made.
// A JoinGroup whose rebalance has not completed prints nothing until the
// command that completes it (often a `tick`).
//
// Commands (a client name stands for one consumer; the harness remembers
// its member id and generation from its last answers):
//
//	open [delay=D] [min-session=D] [retention=D] [check=D] [compact=N]
//	restart                 close cleanly and reopen on the same files
//	crash                   lose what is not fsynced, reopen
//	join C [group=G] [member=ID|none] [instance=I] [protocols=p:meta,...]
//	       [type=T] [session=D] [rebalance=D] [v0] [v9]
//	                        (v0: no KIP-394 step; v9: KIP-814 skip assignment)
//	sync C [gen=N] [assign=C1:a1,C2:a2]
//	heartbeat C [gen=N]
//	leave C... | leave-instance I...
//	commit C|- [group=G] [gen=N] t:p=offset[:metadata[:epoch]]...
//	fetch [group=G] [t:p...]
//	describe [group=G] | list | delete [group=G] | delete-offsets [group=G] t:p...
//	tick D | expire | topic-deleted T | topics T... (the topics that exist)
var rewrite = flag.Bool("rewrite", false, "rewrite the expected outputs of testdata scripts")

func TestScripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { runScript(t, f) })
		})
	}
}

type scriptEntry struct {
	line     int
	cmd      string
	expected string
	pre      string // comments and blank lines before the command
}

func parseScript(t *testing.T, path string) []scriptEntry {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []scriptEntry
	var pre strings.Builder
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			pre.WriteString(line + "\n")
			continue
		}
		e := scriptEntry{line: n, cmd: line, pre: pre.String()}
		pre.Reset()
		if !sc.Scan() || sc.Text() != "----" {
			t.Fatalf("%s:%d: command without ----", path, n)
		}
		n++
		var exp strings.Builder
		for sc.Scan() {
			n++
			if sc.Text() == "" {
				break
			}
			exp.WriteString(sc.Text() + "\n")
		}
		e.expected = exp.String()
		out = append(out, e)
	}
	if pre.Len() > 0 {
		out = append(out, scriptEntry{pre: pre.String(), line: -1})
	}
	return out
}

func runScript(t *testing.T, path string) {
	h := &harness{t: t, mem: memfs.New(), clients: map[string]*client{}, topics: nil}
	// The data directory, durable as logdir would have made it.
	if err := h.mem.MkdirAll("/data"); err != nil {
		t.Fatal(err)
	}
	if err := h.mem.SyncDir("/"); err != nil {
		t.Fatal(err)
	}
	defer h.close()
	entries := parseScript(t, path)
	var rewritten strings.Builder
	for _, e := range entries {
		rewritten.WriteString(e.pre)
		if e.line < 0 {
			continue
		}
		got := h.run(e.cmd)
		rewritten.WriteString(e.cmd + "\n----\n" + got + "\n")
		if !*rewrite && got != e.expected {
			t.Errorf("%s:%d: %s\ngot:\n%swant:\n%s", path, e.line, e.cmd, got, e.expected)
		}
	}
	if *rewrite {
		out := strings.TrimRight(rewritten.String(), "\n") + "\n"
		if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

type client struct {
	name       string
	member     string
	generation int32 // the classic generation, or the KIP-848 member epoch
	assigned   []TopicPartition
}

type pending struct {
	seq  int
	what string
	poll func() (string, bool)
}

type harness struct {
	t       *testing.T
	mem     *memfs.FS
	cfg     Config
	c       *Coordinator
	l       *seglog.Log
	p       *partition.Partition
	ids     map[string]int
	clients map[string]*client
	topicMu sync.Mutex
	topics  map[string]bool  // nil: every topic exists
	counts  map[string]int32 // partition counts (KIP-848 subscriptions)
	calls   []*pending
	seq     int
	// segBytes is the offsets log's segment.bytes (open compact=N): the
	// log is compacted, and the clean command runs a cleaner pass.
	segBytes int64
}

const logDir = "/data/__consumer_offsets-0"

func (h *harness) openLog(create bool) (*partition.Partition, error) {
	if h.p != nil {
		return h.p, nil
	}
	if _, err := h.mem.Stat(logDir); err != nil && !create {
		return nil, nil
	}
	return h.openLogAt(seglog.State{})
}

func (h *harness) openLogAt(st seglog.State) (*partition.Partition, error) {
	cfg := seglog.Config{SegmentBytes: 1 << 20, RetentionMs: -1, IndexMaxBytes: 64 << 10}
	if h.segBytes > 0 {
		cfg.SegmentBytes = h.segBytes
		cfg.Compaction = seglog.Compaction{Enabled: true, DeleteRetention: time.Hour, MaxLag: 1 << 62}
	}
	l, err := seglog.Open(h.mem, logDir, cfg, st)
	if err != nil {
		return nil, err
	}
	p, err := partition.Open("__consumer_offsets", 0, l, partition.Options{FS: h.mem})
	if err != nil {
		return nil, err
	}
	h.l, h.p = l, p
	return p, nil
}

func (h *harness) open(args map[string]string) string {
	h.cfg = Config{
		OffsetsLog: h.openLog,
		Logger:     slog.New(slog.DiscardHandler),
		TopicExists: func(topic string) bool {
			h.topicMu.Lock()
			defer h.topicMu.Unlock()
			return h.topics == nil || h.topics[topic]
		},
		MinSessionTimeout: time.Second,
		Topics: func() map[string]int32 {
			h.topicMu.Lock()
			defer h.topicMu.Unlock()
			out := make(map[string]int32, len(h.counts))
			for t, n := range h.counts {
				out[t] = n
			}
			return out
		},
		ConsumerSessionTimeout:    10 * time.Second,
		ConsumerHeartbeatInterval: time.Second,
	}
	h.ids = map[string]int{}
	h.cfg.NewMemberID = func(prefix string) string {
		h.ids[prefix]++
		return fmt.Sprintf("%s-%d", prefix, h.ids[prefix])
	}
	for k, v := range args {
		switch k {
		case "delay":
			h.cfg.InitialRebalanceDelay = dur(h.t, v)
		case "consumer-session":
			h.cfg.ConsumerSessionTimeout = dur(h.t, v)
		case "min-session":
			h.cfg.MinSessionTimeout = dur(h.t, v)
		case "retention":
			h.cfg.OffsetsRetention = dur(h.t, v)
		case "check":
			h.cfg.RetentionCheckInterval = dur(h.t, v)
		case "compact":
			h.segBytes, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	return h.reopen()
}

func (h *harness) reopen() string {
	c, err := Open(h.cfg)
	if err != nil {
		return fmt.Sprintf("open: %v\n", err)
	}
	h.c = c
	return ""
}

func (h *harness) close() {
	if h.c != nil {
		h.c.Close()
		h.c = nil
	}
	if h.l != nil {
		h.l.Close()
		h.l, h.p = nil, nil
	}
	synctest.Wait()
}

func dur(t *testing.T, s string) time.Duration {
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("duration %q: %v", s, err)
	}
	return d
}

func (h *harness) cl(name string) *client {
	c := h.clients[name]
	if c == nil {
		c = &client{name: name, generation: -1}
		h.clients[name] = c
	}
	return c
}

// track registers a call whose answer is printed when it arrives.
func track[T any](h *harness, call *Call[T], format func(T) string) {
	h.seq++
	h.calls = append(h.calls, &pending{seq: h.seq, poll: func() (string, bool) {
		select {
		case v := <-call.ch:
			call.ch <- v
			return format(v), true
		default:
			return "", false
		}
	}})
}

// settle waits for the bubble to go idle and prints the answers that came.
func (h *harness) settle() string {
	synctest.Wait()
	var out strings.Builder
	rest := h.calls[:0]
	for _, p := range h.calls {
		if s, ok := p.poll(); ok {
			out.WriteString(s + "\n")
		} else {
			rest = append(rest, p)
		}
	}
	h.calls = rest
	return out.String()
}

func parseArgs(fields []string) (pos []string, kv map[string]string) {
	kv = map[string]string{}
	for _, f := range fields {
		if k, v, ok := strings.Cut(f, "="); ok && !strings.Contains(k, ":") {
			kv[k] = v
		} else {
			pos = append(pos, f)
		}
	}
	return pos, kv
}

func (h *harness) run(cmd string) string {
	fields := strings.Fields(cmd)
	pos, kv := parseArgs(fields[1:])
	grp, ok := kv["group"]
	if !ok {
		grp = "g"
	}
	if grp == "GROUPID-OF-40000-BYTES" {
		grp = strings.Repeat("g", 40000)
	}
	var out string
	switch fields[0] {
	case "open":
		out = h.open(kv)
	case "restart":
		h.close()
		if _, err := h.openLogAt(seglog.State{Clean: true, RecoveryPoint: 1 << 62}); err != nil {
			return fmt.Sprintf("reopen log: %v\n", err)
		}
		out = h.reopen()
	case "crash":
		h.mem = h.mem.Crash(memfs.CrashOptions{})
		h.close()
		if _, err := h.mem.Stat(logDir); err == nil {
			if _, err := h.openLogAt(seglog.State{}); err != nil {
				return fmt.Sprintf("reopen log: %v\n", err)
			}
		}
		out = h.reopen()
	case "join":
		h.join(pos[0], grp, kv, fields)
	case "sync":
		c := h.cl(pos[0])
		req := SyncRequest{Group: grp, MemberID: c.member, Generation: c.generation, InstanceID: kv["instance"]}
		if g, ok := kv["gen"]; ok {
			n, _ := strconv.Atoi(g)
			req.Generation = int32(n)
		}
		if a, ok := kv["assign"]; ok {
			req.Assignments = map[string][]byte{}
			for _, pair := range strings.Split(a, ",") {
				who, what, _ := strings.Cut(pair, ":")
				req.Assignments[h.cl(who).member] = []byte(what)
			}
		}
		track(h, h.c.SyncGroup(req), func(r SyncResult) string {
			if r.Err != nil {
				return fmt.Sprintf("%s: sync %s", c.name, errName(r.Err))
			}
			return fmt.Sprintf("%s: sync assignment=%q", c.name, r.Assignment)
		})
	case "heartbeat":
		c := h.cl(pos[0])
		req := HeartbeatRequest{Group: grp, MemberID: c.member, Generation: c.generation, InstanceID: kv["instance"]}
		if g, ok := kv["gen"]; ok {
			n, _ := strconv.Atoi(g)
			req.Generation = int32(n)
		}
		track(h, h.c.Heartbeat(req), func(err error) string { return fmt.Sprintf("%s: heartbeat %s", c.name, errName(err)) })
	case "leave", "leave-instance":
		var ms []LeaveMember
		for _, p := range pos {
			if fields[0] == "leave" {
				ms = append(ms, LeaveMember{MemberID: h.cl(p).member})
			} else {
				ms = append(ms, LeaveMember{InstanceID: p})
			}
		}
		track(h, h.c.LeaveGroup(grp, ms), func(r LeaveResult) string {
			if r.Err != nil {
				return "leave " + errName(r.Err)
			}
			var s []string
			for i, e := range r.Members {
				s = append(s, pos[i]+"="+errName(e))
			}
			return "leave " + strings.Join(s, " ")
		})
	case "commit":
		h.commit(pos, grp, kv)
	case "fetch":
		var tps []TopicPartition
		for _, p := range pos {
			tps = append(tps, parseTP(h.t, p))
		}
		track(h, h.c.FetchOffsets(grp, tps), func(r FetchResult) string {
			if r.Err != nil {
				return "fetch " + errName(r.Err)
			}
			var s []string
			for _, o := range r.Offsets {
				s = append(s, fmt.Sprintf("%s:%d=%d/%q/e%d", o.Topic, o.Partition, o.Offset, o.Metadata, o.LeaderEpoch))
			}
			return fmt.Sprintf("fetch %s: %s", grp, strings.Join(s, " "))
		})
	case "describe":
		track(h, h.c.DescribeGroup(grp), func(d Description) string {
			if d.Err != nil {
				return "describe " + errName(d.Err)
			}
			var ms []string
			for _, m := range d.Members {
				s := m.MemberID
				if m.InstanceID != "" {
					s += "(" + m.InstanceID + ")"
				}
				if m.Assignment != nil {
					s += fmt.Sprintf("=%q", m.Assignment)
				}
				ms = append(ms, s)
			}
			return fmt.Sprintf("describe %s: %s type=%q protocol=%q members=[%s]", d.Group, d.State, d.ProtocolType, d.Protocol, strings.Join(ms, " "))
		})
	case "list":
		var s []string
		for _, l := range h.c.ListGroups() {
			s = append(s, fmt.Sprintf("%s(%s,%q)", l.Group, l.State, l.ProtocolType))
			if l.Type != "classic" {
				s[len(s)-1] += "/" + l.Type
			}
		}
		out = "list: " + strings.Join(s, " ") + "\n"
	case "delete":
		track(h, h.c.DeleteGroup(grp), func(err error) string { return "delete " + grp + " " + errName(err) })
	case "delete-offsets":
		var tps []TopicPartition
		for _, p := range pos {
			tps = append(tps, parseTP(h.t, p))
		}
		track(h, h.c.DeleteOffsets(grp, tps), func(r DeleteOffsetsResult) string {
			if r.Err != nil {
				return "delete-offsets " + errName(r.Err)
			}
			var s []string
			for i, e := range r.Errs {
				s = append(s, pos[i]+"="+errName(e))
			}
			return "delete-offsets " + strings.Join(s, " ")
		})
	case "tick":
		time.Sleep(dur(h.t, pos[0]))
	case "expire":
		h.c.ExpireOffsets()
	case "topic-deleted":
		h.topicMu.Lock()
		delete(h.topics, pos[0])
		h.topicMu.Unlock()
		h.c.TopicDeleted(pos[0])
	case "topics":
		h.topicMu.Lock()
		h.topics = map[string]bool{}
		h.counts = map[string]int32{}
		for _, p := range pos {
			name, n, _ := strings.Cut(p, ":")
			count, _ := strconv.Atoi(n)
			h.topics[name] = true
			h.counts[name] = int32(max(count, 1))
		}
		h.topicMu.Unlock()
	case "chb":
		for _, f := range pos[1:] {
			kv[f] = ""
		}
		h.consumerHeartbeat(pos[0], grp, kv)
	case "cdescribe":
		track(h, h.c.DescribeConsumerGroup(grp), func(d ConsumerDescription) string {
			if d.Err != nil {
				return "cdescribe " + errName(d.Err)
			}
			var ms []string
			for _, m := range d.Members {
				ms = append(ms, fmt.Sprintf("%s(e%d,%v->%v)", m.MemberID, m.MemberEpoch, tpList(m.Assignment), tpList(m.TargetAssignment)))
			}
			return fmt.Sprintf("cdescribe %s: %s epoch=%d target=%d assignor=%s members=[%s]", d.Group, d.State, d.Epoch, d.AssignmentEpoch, d.Assignor, strings.Join(ms, " "))
		})
	case "clean":
		// Roll the offsets log and run one log cleaner pass on it.
		synctest.Wait()
		if err := h.l.Roll(); err != nil {
			h.t.Fatal(err)
		}
		res, err := cleaner.New(h.mem, cleaner.Options{}).Clean(context.Background(), h.l, h.l.EndOffset())
		if err != nil {
			h.t.Fatal(err)
		}
		out = fmt.Sprintf("clean: segments=%d removed=%d\n", res.SegmentsIn, res.Removed)
	case "log":
		// The offsets log: its start and end offsets and segment count.
		synctest.Wait()
		if h.l == nil {
			out = "log: none\n"
		} else {
			out = fmt.Sprintf("log: start=%d end=%d segments=%d\n", h.l.StartOffset(), h.l.EndOffset(), h.l.NumSegments())
		}
	default:
		h.t.Fatalf("unknown command %q", cmd)
	}
	return out + h.settle()
}

func (h *harness) join(name, grp string, kv map[string]string, fields []string) {
	c := h.cl(name)
	req := JoinRequest{
		Group: grp, MemberID: c.member, ClientID: name, ClientHost: "/127.0.0.1",
		InstanceID: kv["instance"], ProtocolType: "consumer",
		SessionTimeout: 10 * time.Second, RebalanceTimeout: 30 * time.Second,
		RequireKnownMemberID: true,
	}
	for _, f := range fields {
		switch f {
		case "v0":
			req.RequireKnownMemberID = false
		case "v9":
			req.SupportsSkipAssignment = true
		}
	}
	if m, ok := kv["member"]; ok {
		if m == "none" {
			m = ""
		}
		req.MemberID = m
	}
	if t, ok := kv["type"]; ok {
		req.ProtocolType = t
	}
	protos := "range"
	if p, ok := kv["protocols"]; ok {
		protos = p
	}
	for _, p := range strings.Split(protos, ",") {
		name, meta, _ := strings.Cut(p, ":")
		if meta == "" {
			meta = name + "-" + c.name
		}
		md := []byte(meta)
		if topics, ok := strings.CutPrefix(meta, "SUB("); ok {
			md = subscription(strings.Split(strings.TrimSuffix(topics, ")"), "+")...)
		}
		req.Protocols = append(req.Protocols, Protocol{Name: name, Metadata: md})
	}
	if s, ok := kv["session"]; ok {
		req.SessionTimeout = dur(h.t, s)
	}
	if s, ok := kv["rebalance"]; ok {
		req.RebalanceTimeout = dur(h.t, s)
	}
	track(h, h.c.JoinGroup(req), func(r JoinResult) string {
		if r.MemberID != "" {
			c.member = r.MemberID
		}
		if r.Err != nil {
			return fmt.Sprintf("%s: join %s member=%s", name, errName(r.Err), r.MemberID)
		}
		c.generation = r.Generation
		s := fmt.Sprintf("%s: join gen=%d member=%s leader=%s protocol=%s", name, r.Generation, r.MemberID, r.Leader, r.Protocol)
		if r.SkipAssignment {
			s += " skip-assignment"
		}
		if r.Members != nil {
			var ms []string
			for _, m := range r.Members {
				ms = append(ms, fmt.Sprintf("%s:%q", m.MemberID, m.Metadata))
			}
			s += " members=[" + strings.Join(ms, " ") + "]"
		}
		return s
	})
}

func (h *harness) commit(pos []string, grp string, kv map[string]string) {
	req := CommitRequest{Group: grp, Generation: -1}
	name := pos[0]
	if name != "-" {
		c := h.cl(name)
		req.MemberID, req.Generation = c.member, c.generation
	}
	if g, ok := kv["gen"]; ok {
		n, _ := strconv.Atoi(g)
		req.Generation = int32(n)
	}
	if m, ok := kv["member"]; ok {
		req.MemberID = m
	}
	if v, ok := kv["v"]; ok {
		n, _ := strconv.Atoi(v)
		req.Version = int16(n)
	}
	req.InstanceID = kv["instance"]
	if r, ok := kv["retention"]; ok {
		req.Retention = dur(h.t, r)
	}
	for _, p := range pos[1:] {
		tpStr, rest, _ := strings.Cut(p, "=")
		tp := parseTP(h.t, tpStr)
		parts := strings.SplitN(rest, ":", 3)
		off, _ := strconv.ParseInt(parts[0], 10, 64)
		o := CommitOffset{Topic: tp.Topic, Partition: tp.Partition, Offset: off, LeaderEpoch: -1, Timestamp: -1}
		if len(parts) > 1 {
			o.Metadata = parts[1]
			if parts[1] == "BIG" {
				o.Metadata = strings.Repeat("x", 5000)
			}
		}
		if len(parts) > 2 {
			e, _ := strconv.Atoi(parts[2])
			o.LeaderEpoch = int32(e)
		}
		req.Offsets = append(req.Offsets, o)
	}
	track(h, h.c.CommitOffsets(req), func(r CommitResult) string {
		if r.Err != nil {
			return fmt.Sprintf("%s: commit %s", name, errName(r.Err))
		}
		var s []string
		for i, e := range r.Errs {
			s = append(s, fmt.Sprintf("%s:%d=%s", req.Offsets[i].Topic, req.Offsets[i].Partition, errName(e)))
		}
		return fmt.Sprintf("%s: commit %s", name, strings.Join(s, " "))
	})
}

// subscription encodes a ConsumerProtocolSubscription v0 for topics.
func subscription(topics ...string) []byte {
	b := []byte{0, 0}
	b = binary.BigEndian.AppendUint32(b, uint32(len(topics)))
	for _, t := range topics {
		b = appendStr(b, t)
	}
	return binary.BigEndian.AppendUint32(b, 0xffffffff) // null user data
}

// consumerHeartbeat sends a KIP-848 heartbeat for client name:
//
//	chb C [join|leave|static-leave|epoch=N] [topics=a,b] [regex=R]
//	      [assignor=A] [owned=t:0,t:1|none|assigned] [instance=I]
//	      [rebalance=D] [member=ID]
//
// Without join/leave the epoch is the client's; owned=assigned reports the
// client's last assignment (a client that adopted it).
func (h *harness) consumerHeartbeat(name, grp string, kv map[string]string) {
	c := h.cl(name)
	req := ConsumerHeartbeat{Group: grp, MemberID: c.member, MemberEpoch: c.generation, ClientID: name, ClientHost: "/127.0.0.1", RebalanceTimeout: -1}
	if c.member == "" {
		req.MemberID = name + "-id" // v1: the client makes its id
	}
	for k, v := range kv {
		switch k {
		case "epoch":
			n, _ := strconv.Atoi(v)
			req.MemberEpoch = int32(n)
		case "member":
			req.MemberID = v
		case "topics":
			req.SubscribedTopics = []string{}
			if v != "" {
				req.SubscribedTopics = strings.Split(v, ",")
			}
		case "regex":
			req.SubscribedRegex = &v
		case "assignor":
			req.ServerAssignor = &v
		case "instance":
			req.InstanceID = &v
		case "rebalance":
			req.RebalanceTimeout = dur(h.t, v)
		case "owned":
			req.Owned = []TopicPartition{}
			switch v {
			case "none":
			case "assigned":
				req.Owned = append(req.Owned, c.assigned...)
			default:
				for _, p := range strings.Split(v, ",") {
					req.Owned = append(req.Owned, parseTP(h.t, p))
				}
			}
		}
	}
	if _, ok := kv["join"]; ok {
		req.MemberEpoch = 0
		req.Owned = []TopicPartition{}
		if req.RebalanceTimeout < 0 {
			req.RebalanceTimeout = 30 * time.Second
		}
		if req.SubscribedTopics == nil && req.SubscribedRegex == nil {
			req.SubscribedTopics = []string{"t"}
		}
	}
	if _, ok := kv["leave"]; ok {
		req.MemberEpoch = -1
	}
	if _, ok := kv["static-leave"]; ok {
		req.MemberEpoch = -2
	}
	track(h, h.c.ConsumerGroupHeartbeat(req), func(r ConsumerHeartbeatResult) string {
		if r.Err != nil {
			return fmt.Sprintf("%s: chb %s", name, errName(r.Err))
		}
		c.member, c.generation = r.MemberID, r.MemberEpoch
		s := fmt.Sprintf("%s: chb member=%s epoch=%d", name, r.MemberID, r.MemberEpoch)
		if r.HasAssignment {
			c.assigned = r.Assignment
			s += " assignment=" + tpList(r.Assignment)
		}
		return s
	})
}

func tpList(tps []TopicPartition) string {
	var s []string
	for _, tp := range tps {
		s = append(s, fmt.Sprintf("%s:%d", tp.Topic, tp.Partition))
	}
	return "[" + strings.Join(s, " ") + "]"
}

func parseTP(t *testing.T, s string) TopicPartition {
	topic, p, ok := strings.Cut(s, ":")
	n, err := strconv.Atoi(p)
	if !ok || err != nil {
		t.Fatalf("topic:partition %q", s)
	}
	return TopicPartition{Topic: topic, Partition: int32(n)}
}

// errName names a domain error as Kafka would.
func errName(err error) string {
	if err == nil {
		return "ok"
	}
	for _, e := range []struct {
		err  error
		name string
	}{
		{ErrInvalidGroupID, "INVALID_GROUP_ID"}, {ErrUnknownMemberID, "UNKNOWN_MEMBER_ID"},
		{ErrIllegalGeneration, "ILLEGAL_GENERATION"}, {ErrRebalanceInProgress, "REBALANCE_IN_PROGRESS"},
		{ErrFencedInstanceID, "FENCED_INSTANCE_ID"}, {ErrMemberIDRequired, "MEMBER_ID_REQUIRED"},
		{ErrInconsistentProtocol, "INCONSISTENT_GROUP_PROTOCOL"}, {ErrInvalidSessionTimeout, "INVALID_SESSION_TIMEOUT"},
		{ErrGroupIDNotFound, "GROUP_ID_NOT_FOUND"}, {ErrNonEmptyGroup, "NON_EMPTY_GROUP"},
		{ErrGroupSubscribedToTopic, "GROUP_SUBSCRIBED_TO_TOPIC"}, {ErrOffsetMetadataTooLarge, "OFFSET_METADATA_TOO_LARGE"},
		{ErrInvalidCommitOffsetSize, "INVALID_COMMIT_OFFSET_SIZE"}, {ErrCoordinatorNotAvailable, "COORDINATOR_NOT_AVAILABLE"},
		{ErrNotCoordinator, "NOT_COORDINATOR"}, {ErrInvalidRequest, "INVALID_REQUEST"},
		{ErrFencedMemberEpoch, "FENCED_MEMBER_EPOCH"}, {ErrStaleMemberEpoch, "STALE_MEMBER_EPOCH"},
		{ErrUnreleasedInstanceID, "UNRELEASED_INSTANCE_ID"}, {ErrUnsupportedAssignor, "UNSUPPORTED_ASSIGNOR"},
		{ErrInvalidRegularExpression, "INVALID_REGULAR_EXPRESSION"}, {ErrUnsupportedVersion, "UNSUPPORTED_VERSION"},
	} {
		if errors.Is(err, e.err) {
			return e.name
		}
	}
	return "UNEXPECTED(" + err.Error() + ")"
}
