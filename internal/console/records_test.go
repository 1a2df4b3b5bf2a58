package console

import (
	"encoding/json"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stromhq/strom/internal/jsonenc"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestAppendRecord(t *testing.T) {
	rec := &kgo.Record{
		Topic: "t", Partition: 2, Offset: 7, Timestamp: time.UnixMilli(1700000000123),
		Key:   []byte("s3"),
		Value: []byte("{\n  \"a\": [1, 2],\n  \"s\": \"x\"\n}"),
		Headers: []kgo.RecordHeader{
			{Key: "text", Value: []byte("v\n\"q\"")},
			{Key: "bin", Value: []byte{0xff, 0x00}},
			{Key: "nil"},
		},
	}
	got := string(jsonenc.AppendRecord(nil, rec))
	want := `{"topic":"t","partition":2,"offset":7,"timestamp":1700000000123,"key":"s3","key_encoding":"text","value":{"a":[1,2],"s":"x"},"value_encoding":"json","headers":[{"key":"text","value":"v\n\"q\""},{"key":"bin","value_base64":"/wA="},{"key":"nil","value":null}],"size":31}`
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	for _, tt := range []struct {
		value []byte
		want  string
	}{
		{nil, `"value":null`},
		{[]byte(`"quoted"`), `"value":"quoted","value_encoding":"json"`},
		{[]byte(`12.50`), `"value":12.50,"value_encoding":"json"`},
		{[]byte(``), `"value":"","value_encoding":"text"`},
		{[]byte("ünï\tcode"), `"value":"ünï\tcode","value_encoding":"text"`},
		{[]byte{0xc3, 0x28}, `"value":"wyg=","value_encoding":"base64"`},
	} {
		out := jsonenc.AppendRecord(nil, &kgo.Record{Value: tt.value})
		if !json.Valid(out) {
			t.Errorf("%q: invalid JSON %s", tt.value, out)
		}
		if !contains(string(out), tt.want) {
			t.Errorf("%q: %s lacks %s", tt.value, out, tt.want)
		}
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func TestBytesFromJSON(t *testing.T) {
	for in, want := range map[string]string{
		`"text"`:         "text",
		`"es\"c\u00e9"`:  `es"cé`,
		`{ "a" : 1 }`:    `{"a":1}`,
		`[1, 2]`:         `[1,2]`,
		`21.70`:          `21.70`,
		`true`:           `true`,
		` "padded"  `:    `padded`,
		`{"n":{"m":[]}}`: `{"n":{"m":[]}}`,
	} {
		if got := string(bytesFromJSON(json.RawMessage(in))); got != want {
			t.Errorf("%s: %q, want %q", in, got, want)
		}
	}
	if bytesFromJSON(nil) != nil || bytesFromJSON(json.RawMessage("null")) != nil {
		t.Error("null is not a null value")
	}
}

// FuzzAppendString: any string becomes valid JSON that decodes back to
// it (invalid UTF-8 becoming U+FFFD), and never holds a raw newline.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "q\"b\\", "\n\r\t\x00\x1f", "\u2028\u2029", "\xff\xfe", "ünïcødé 😀"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := jsonenc.AppendString(nil, s)
		var back string
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("%q -> %s: %v", s, out, err)
		}
		if utf8.ValidString(s) && back != s {
			t.Fatalf("%q -> %s -> %q", s, out, back)
		}
		for _, c := range out {
			if c == '\n' || c == '\r' {
				t.Fatalf("%q -> %s has a raw line break", s, out)
			}
		}
	})
}

// FuzzAppendRecord: any key, value and header make one valid JSON line.
func FuzzAppendRecord(f *testing.F) {
	f.Add([]byte("k"), []byte(`{"a":1}`), "h", []byte("v"))
	f.Add([]byte{}, []byte("\n{\n}\n"), "", []byte{0xff})
	f.Fuzz(func(t *testing.T, key, value []byte, hk string, hv []byte) {
		out := jsonenc.AppendRecord(nil, &kgo.Record{Topic: "t", Key: key, Value: value, Headers: []kgo.RecordHeader{{Key: hk, Value: hv}}})
		if !json.Valid(out) {
			t.Fatalf("invalid JSON: %s", out)
		}
		for _, c := range out {
			if c == '\n' {
				t.Fatalf("raw newline in %s", out)
			}
		}
	})
}
