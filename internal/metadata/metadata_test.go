package metadata

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stromhq/strom/internal/storage/vfs/errorfs"
	"github.com/stromhq/strom/internal/storage/vfs/memfs"
)

func TestStorePersistsAndRejectsDamage(t *testing.T) {
	mem := memfs.New()
	mem.MkdirAll("/d")
	mem.SyncDir("/")
	s, err := OpenStore(mem, "/d")
	if err != nil {
		t.Fatal(err)
	}
	t1, err := s.CreateTopic(Topic{Name: "orders", Partitions: 3, Configs: map[string]string{"retention.ms": "1000"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateTopic(Topic{Name: "orders", Partitions: 1}); !errors.Is(err, ErrTopicExists) {
		t.Fatalf("duplicate: %v", err)
	}
	for _, bad := range []Topic{{Name: "a/b", Partitions: 1}, {Name: "ok", Partitions: 0}, {Name: "ok", Partitions: 1, Configs: map[string]string{"retention.ms": "soon"}}, {Name: "ok", Partitions: 1, Configs: map[string]string{"no.such": "1"}}} {
		if _, err := s.CreateTopic(bad); err == nil {
			t.Fatalf("accepted %+v", bad)
		}
	}
	if err := s.SetPartitions("orders", 2); !errors.Is(err, ErrInvalidPartitions) {
		t.Fatalf("shrink: %v", err)
	}
	if err := s.SetPartitions("orders", 5); err != nil {
		t.Fatal(err)
	}
	a, _ := s.AllocateProducerIDs(1000)
	b, _ := s.AllocateProducerIDs(1000)
	if b != a+1000 {
		t.Fatalf("producer id blocks %d then %d", a, b)
	}
	// A power loss after these calls keeps all of them.
	crashed := mem.Crash(memfs.CrashOptions{})
	s2, err := OpenStore(crashed, "/d")
	if err != nil {
		t.Fatal(err)
	}
	got, ok := s2.Topic("orders")
	if !ok || got.ID != t1.ID || got.Partitions != 5 || got.Configs["retention.ms"] != "1000" {
		t.Fatalf("after crash: %+v", got)
	}
	if c, _ := s2.AllocateProducerIDs(1); c != b+1000 {
		t.Fatalf("producer ids reused after restart: %d", c)
	}
	// A damaged file is an error, not an empty broker.
	crashed.Mutate("/d/__strom_metadata", func(b []byte) []byte { b[len(b)-3] ^= 1; return b })
	if _, err := OpenStore(crashed, "/d"); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("damaged metadata: %v", err)
	}
}

func TestResolveAndLogConfig(t *testing.T) {
	props, err := ParseProperties(strings.NewReader("# broker\nlog.retention.hours=2\nnum.partitions = 3\nlog.segment.bytes: 1048576\n"))
	if err != nil {
		t.Fatal(err)
	}
	bc, err := NewBrokerConfig(props)
	if err != nil {
		t.Fatal(err)
	}
	if s := bc.Settings(); s.NumPartitions != 3 || !s.AutoCreateTopics {
		t.Fatalf("broker values: %d %v", s.NumPartitions, s.AutoCreateTopics)
	}
	vals := Resolve(map[string]string{"segment.bytes": "2048"}, bc)
	find := func(n string) ConfigValue {
		for _, v := range vals {
			if v.Name == n {
				return v
			}
		}
		t.Fatalf("%s missing", n)
		return ConfigValue{}
	}
	if v := find("retention.ms"); v.Value != "7200000" || v.Source != SourceStaticBroker {
		t.Fatalf("retention.ms %+v", v)
	}
	if v := find("segment.bytes"); v.Value != "2048" || v.Source != SourceTopic {
		t.Fatalf("segment.bytes %+v", v)
	}
	if v := find("max.message.bytes"); v.Value != "1048588" || v.Source != SourceDefault {
		t.Fatalf("max.message.bytes %+v", v)
	}
	lc := LogConfig(vals)
	if lc.RetentionMs != 2*time.Hour || lc.SegmentBytes != 2048 || lc.MaxBatchBytes != 1048588 || lc.FlushMessages != 0 {
		t.Fatalf("log config %+v", lc)
	}
	for _, bad := range []map[string]string{{"num.partitions": "x"}, {"no.such.thing": "1"}, {"log.retention.ms": "-5"}} {
		if _, err := NewBrokerConfig(bad); !errors.Is(err, ErrInvalidConfig) {
			t.Fatalf("%v accepted: %v", bad, err)
		}
	}
	if _, err := ParseProperties(strings.NewReader("just words\n")); err == nil {
		t.Fatal("a line without = accepted")
	}
}

// A topic creation that fails on a full disk leaves the previous file and
// no half-written temporary file (it would only hold space).
func TestStoreFullDiskLeavesNoTempFile(t *testing.T) {
	mem := memfs.New()
	mem.MkdirAll("/d")
	mem.SyncDir("/")
	full := false
	fsys := errorfs.Wrap(mem, errorfs.InjectorFunc(func(op errorfs.Op, name string) error {
		if op == errorfs.OpWrite && full {
			return &errorfs.PartialWrite{N: 4}
		}
		return nil
	}))
	s, err := OpenStore(fsys, "/d")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateTopic(Topic{Name: "kept", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	full = true
	if _, err := s.CreateTopic(Topic{Name: "refused", Partitions: 1}); err == nil {
		t.Fatal("topic created on a full disk")
	}
	if _, err := mem.Stat("/d/__strom_metadata.tmp"); err == nil {
		t.Fatal("a failed write left __strom_metadata.tmp")
	}
	s2, err := OpenStore(mem, "/d")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s2.Topic("kept"); !ok {
		t.Fatal("the previous metadata file was lost")
	}
}

// Dynamic broker configs are validated, survive a power loss once set, and
// layer over the static ones in Kafka's order.
func TestDynamicBrokerConfigsStoreAndResolve(t *testing.T) {
	mem := memfs.New()
	mem.MkdirAll("/d")
	mem.SyncDir("/")
	s, err := OpenStore(mem, "/d")
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []map[string]string{{"log.retention.ms": "soon"}, {"num.partitions": "2"}, {"log.retention.hours": "1"}, {"no.such": "1"}} {
		if err := s.SetBrokerConfigs("0", bad); !errors.Is(err, ErrInvalidConfig) {
			t.Fatalf("%v: %v", bad, err)
		}
	}
	if err := s.SetBrokerConfigs("", map[string]string{"log.retention.ms": "5000", "message.max.bytes": "3000"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetBrokerConfigs("0", map[string]string{"log.retention.ms": "7000"}); err != nil {
		t.Fatal(err)
	}
	s2, err := OpenStore(mem.Crash(memfs.CrashOptions{}), "/d")
	if err != nil {
		t.Fatal(err)
	}
	bc, err := NewBrokerConfig(map[string]string{"log.retention.ms": "9000", "log.segment.bytes": "100000"})
	if err != nil {
		t.Fatal(err)
	}
	bc.SetDynamic(s2.BrokerConfigs("0"), s2.BrokerConfigs(""))
	want := map[string]struct {
		v   string
		src Source
	}{
		"retention.ms":      {"7000", SourceDynamicBroker},
		"max.message.bytes": {"3000", SourceDynamicDefaultBroker},
		"segment.bytes":     {"100000", SourceStaticBroker},
		"retention.bytes":   {"-1", SourceDefault},
	}
	for _, v := range Resolve(map[string]string{"segment.ms": "1"}, bc) {
		if w, ok := want[v.Name]; ok && (v.Value != w.v || v.Source != w.src) {
			t.Errorf("%s = %q from %d, want %q from %d", v.Name, v.Value, v.Source, w.v, w.src)
		}
	}
	if lc := LogConfig(Resolve(nil, bc)); lc.RetentionMs != 7*time.Second || lc.MaxBatchBytes != 3000 {
		t.Fatalf("log config %+v", lc)
	}
	// Removing a resource's last config removes the resource.
	if err := s2.SetBrokerConfigs("0", nil); err != nil || s2.BrokerConfigs("0") != nil {
		t.Fatalf("cleared: %v %v", err, s2.BrokerConfigs("0"))
	}
}

// memStore opens a store in a new in-memory file system.
func memStore(tb testing.TB) *Store {
	tb.Helper()
	mem := memfs.New()
	mem.MkdirAll("/d")
	s, err := OpenStore(mem, "/d")
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// TestTopicByIDAfterChanges: lookups by id go through a hint map filled
// as they are made; it answers as a walk over the topics would, after a
// topic is deleted (its id unknown), recreated under its name (the new id
// found, the old one not) and changed (the current topic returned), and
// stays bounded under a churn of topics.
func TestTopicByIDAfterChanges(t *testing.T) {
	s := memStore(t)
	a, err := s.CreateTopic(Topic{Name: "a", Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := s.TopicViewByID(a.ID); !ok || got.Name != "a" {
		t.Fatalf("by id: %+v %v", got, ok)
	}
	if err := s.SetConfigs("a", map[string]string{"retention.ms": "5"}); err != nil {
		t.Fatal(err)
	}
	if got, ok := s.TopicByID(a.ID); !ok || got.Configs["retention.ms"] != "5" {
		t.Fatalf("after a config change: %+v %v", got, ok)
	}
	if err := s.DeleteTopic("a"); err != nil {
		t.Fatal(err)
	}
	a2, err := s.CreateTopic(Topic{Name: "a", Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.TopicByID(a.ID); ok {
		t.Fatal("the old id finds the recreated topic")
	}
	if got, ok := s.TopicViewByID(a2.ID); !ok || got.Partitions != 2 {
		t.Fatalf("the recreated topic by its id: %+v %v", got, ok)
	}
	b, err := s.CreateTopic(Topic{Name: "b", Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.TopicViewByID(b.ID); !ok {
		t.Fatal("b not found by id")
	}
	if err := s.DeleteTopic("b"); err != nil {
		t.Fatal(err)
	}
	if got, ok := s.TopicViewByID(b.ID); ok {
		t.Fatalf("a deleted topic found by id: %+v", got)
	}
	for i := range 300 {
		c, err := s.CreateTopic(Topic{Name: fmt.Sprint("churn-", i), Partitions: 1})
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := s.TopicViewByID(c.ID); !ok {
			t.Fatalf("churn-%d not found by id", i)
		}
		if err := s.DeleteTopic(c.Name); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(s.byID.names); n > 2*(len(s.st.topics)+1)+1 { // emptied once over twice the topics at an insertion
		t.Fatalf("%d ids noted for %d topics", n, len(s.st.topics))
	}
}

// BenchmarkTopicViewByID10k: a produce's or fetch's lookup of its topic by
// id among 10,000 topics (it walked them all before the map of names).
func BenchmarkTopicViewByID10k(b *testing.B) {
	s := memStore(b)
	topics := make([]Topic, 10_000)
	for i := range topics {
		topics[i] = Topic{Name: fmt.Sprint("t", i), Partitions: 1}
	}
	created, err := s.CreateTopics(topics)
	if err != nil {
		b.Fatal(err)
	}
	for _, t := range created { // the first lookup of an id walks the topics
		s.TopicViewByID(t.ID)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, ok := s.TopicViewByID(created[i%len(created)].ID); !ok {
			b.Fatal("not found")
		}
	}
}
