package metadata

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stromhq/strom/internal/storage/atomicfile"
	"github.com/stromhq/strom/internal/storage/vfs/memfs"
)

// FuzzStoreFile feeds arbitrary bytes to OpenStore as the metadata file it
// reads at start-up, raw or wrapped in a valid header and checksum (so that
// the JSON inside is explored too). It must never panic; a store it opens
// must answer consistently.
func FuzzStoreFile(f *testing.F) {
	valid := encodeStore(storeFile{NextProducerID: 7, Topics: []Topic{{Name: "orders", Partitions: 3, Configs: map[string]string{"retention.ms": "1000"}}}})
	f.Add(valid, false)
	f.Add(valid[14:], true)
	f.Add([]byte(`{"topics":[{"name":"","partitions":-1}],"next_producer_id":-5}`), true)
	f.Add([]byte(`{"topics":null}`), true)
	f.Add(encodeStore(storeFile{BrokerConfigs: map[string]map[string]string{"": {"log.retention.ms": "5"}, "0": {"message.max.bytes": "9"}}}), false)
	f.Add([]byte(`{"broker_configs":{"0":{"log.retention.ms":"x","num.partitions":"2"},"":null}}`), true)
	f.Add([]byte("STMD"), false)
	f.Fuzz(func(t *testing.T, data []byte, wrap bool) {
		if wrap {
			data = atomicfile.Encode(storeMagic, storeVersion, data)
		}
		mem := memfs.New()
		if err := mem.MkdirAll("/d"); err != nil {
			t.Fatal(err)
		}
		if err := mem.WriteFile(filepath.Join("/d", "__strom_metadata"), data); err != nil {
			t.Fatal(err)
		}
		s, err := OpenStore(mem, "/d")
		if err != nil {
			return
		}
		for _, tp := range s.Topics() {
			if got, ok := s.Topic(tp.Name); !ok || got.Name != tp.Name {
				t.Fatalf("topic %q listed but not found", tp.Name)
			}
		}
		// Loaded dynamic broker configs are valid ones.
		for res := range s.st.brokerConfigs {
			for k, v := range s.BrokerConfigs(res) {
				if err := ValidateDynamicBrokerConfig(k, v); err != nil {
					t.Fatalf("broker %q: loaded %s=%q: %v", res, k, v, err)
				}
			}
		}
	})
}

// FuzzParseProperties feeds arbitrary text to ParseProperties, the reader
// of `strom serve --config` files. It must never panic, and every pair it
// returns has a non-empty, trimmed key without a separator.
func FuzzParseProperties(f *testing.F) {
	f.Add("# broker\nlog.retention.hours=168\nsocket.request.max.bytes: 104857600\n! comment\n\n")
	f.Add("=value\n")
	f.Add("key\n")
	f.Add(strings.Repeat("k", 70000) + "=v\n")
	f.Fuzz(func(t *testing.T, text string) {
		props, err := ParseProperties(strings.NewReader(text))
		if err != nil {
			return
		}
		for k := range props {
			if k == "" || k != strings.TrimSpace(k) || strings.ContainsAny(k, "=:") {
				t.Fatalf("key %q from %q", k, text)
			}
		}
	})
}
