package cli

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"
)

func testRecord() *kgo.Record {
	return &kgo.Record{
		Topic: "orders", Partition: 3, Offset: 42, Timestamp: time.UnixMilli(1700000000123),
		Key: []byte("user-1"), Value: []byte(`{"n":1}`),
		Headers: []kgo.RecordHeader{{Key: "a", Value: []byte("1")}, {Key: "b", Value: []byte("x=y")}},
	}
}

func TestFormat(t *testing.T) {
	for _, tc := range []struct{ format, want string }{
		{`%v\n`, "{\"n\":1}\n"},
		{`%s`, `{"n":1}`},
		{`%t %p %o %k %v %T`, `orders 3 42 user-1 {"n":1} 1700000000123`},
		{`%k => %s (partition %p, offset %o)\n`, "user-1 => {\"n\":1} (partition 3, offset 42)\n"},
		{`%h|%K|%S|%V`, "a=1,b=x=y|6|7|7"},
		{`100%% \\ \t\r\n`, "100% \\ \t\r\n"},
		{`plain`, "plain"},
		{``, ""},
		{`héllo %k`, "héllo user-1"},
		{"json", `{"topic":"orders","partition":3,"offset":42,"timestamp":1700000000123,"key":"user-1","key_encoding":"text","value":{"n":1},"value_encoding":"json","headers":[{"key":"a","value":"1"},{"key":"b","value":"x=y"}],"size":13}` + "\n"},
	} {
		f, err := ParseFormat(tc.format)
		if err != nil {
			t.Errorf("ParseFormat(%q): %v", tc.format, err)
			continue
		}
		if got := string(f.Append(nil, testRecord())); got != tc.want {
			t.Errorf("ParseFormat(%q): got %q, want %q", tc.format, got, tc.want)
		}
	}
}

func TestFormatNulls(t *testing.T) {
	r := &kgo.Record{Topic: "t", Timestamp: time.UnixMilli(0)}
	f, _ := ParseFormat(`[%k][%v][%h][%K][%S]`)
	if got := string(f.Append(nil, r)); got != "[][][][-1][-1]" {
		t.Errorf("null key and value: got %q", got)
	}
	r.Key, r.Value = []byte{}, []byte{}
	if got := string(f.Append(nil, r)); got != "[][][][0][0]" {
		t.Errorf("empty key and value: got %q", got)
	}
}

func TestFormatErrors(t *testing.T) {
	for _, tc := range []struct{ format, want string }{
		{`%x`, `unknown token %x at position 1: known tokens are %t %p %o %k %v %s %h %T %K %S %V %%`},
		{`ab%`, `% at the end, position 3: write %% for a literal %`},
		{`%é`, `unknown token %é at position 1: known tokens are %t %p %o %k %v %s %h %T %K %S %V %%`},
		{`a\q`, `unknown escape \q at position 2: known escapes are \n \r \t \\`},
		{`a\`, `\ at the end, position 2: write \\ for a literal backslash`},
	} {
		_, err := ParseFormat(tc.format)
		if err == nil || err.Error() != tc.want {
			t.Errorf("ParseFormat(%q): got error %v, want %q", tc.format, err, tc.want)
		}
	}
}

// FuzzFormat parses arbitrary formats and renders arbitrary records:
// parsing never panics, an error always names a position, and the JSON
// format always yields one valid JSON object that decodes back to the
// record's exact bytes.
func FuzzFormat(f *testing.F) {
	f.Add(`%t %p %o %k=%v %h %T %K %S\n`, []byte("key"), []byte("value"), "h", []byte("x"), false)
	f.Add("json", []byte{0xff, 0}, []byte("ok"), "bin", []byte{0x80}, true)
	f.Fuzz(func(t *testing.T, format string, key, value []byte, hkey string, hval []byte, nullKey bool) {
		p, err := ParseFormat(format)
		if err != nil {
			if !strings.Contains(err.Error(), "position") {
				t.Fatalf("error without a position: %v", err)
			}
			return
		}
		if nullKey {
			key = nil
		}
		r := &kgo.Record{Topic: "t", Partition: 1, Offset: 7, Timestamp: time.UnixMilli(99), Key: key, Value: value,
			Headers: []kgo.RecordHeader{{Key: hkey, Value: hval}}}
		out := p.Append([]byte("prefix"), r)
		if !bytes.HasPrefix(out, []byte("prefix")) {
			t.Fatalf("Append lost what was before it")
		}
		out = out[len("prefix"):]
		if !p.json {
			return
		}
		if !bytes.HasSuffix(out, []byte("}\n")) || bytes.Count(out, []byte("\n")) != 1 {
			t.Fatalf("json: not one line: %q", out)
		}
		var got struct {
			Topic         string          `json:"topic"`
			Partition     int32           `json:"partition"`
			Offset        int64           `json:"offset"`
			Timestamp     int64           `json:"timestamp"`
			Key           json.RawMessage `json:"key"`
			KeyEncoding   string          `json:"key_encoding"`
			Value         json.RawMessage `json:"value"`
			ValueEncoding string          `json:"value_encoding"`
			Headers       []struct {
				Key         string  `json:"key"`
				Value       *string `json:"value"`
				ValueBase64 *string `json:"value_base64"`
			} `json:"headers"`
			Size int `json:"size"`
		}
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("json: %v: %q", err, out)
		}
		if got.Topic != "t" || got.Partition != 1 || got.Offset != 7 || got.Timestamp != 99 || got.Size != len(key)+len(value) {
			t.Fatalf("json: wrong fields: %q", out)
		}
		decode := func(what string, raw json.RawMessage, enc string, want []byte) {
			var s string
			switch {
			case want == nil && string(raw) == "null" && enc == "":
			case want == nil || string(raw) == "null":
				t.Fatalf("json %s: null mismatch: %q", what, out)
			case enc == "json":
				var c bytes.Buffer
				if json.Compact(&c, want) != nil || !bytes.Equal(c.Bytes(), raw) {
					t.Fatalf("json %s: %s is not the compacted %q", what, raw, want)
				}
			case json.Unmarshal(raw, &s) != nil:
				t.Fatalf("json %s: %s is not a string (encoding %q)", what, raw, enc)
			case enc == "base64":
				if b, err := base64.StdEncoding.DecodeString(s); err != nil || !bytes.Equal(b, want) {
					t.Fatalf("json %s: base64 %q does not decode to %q", what, s, want)
				}
			case enc != "text" || s != string(want):
				t.Fatalf("json %s: %q (encoding %q), want %q", what, s, enc, want)
			}
		}
		decode("key", got.Key, got.KeyEncoding, key)
		decode("value", got.Value, got.ValueEncoding, value)
		if len(got.Headers) != 1 {
			t.Fatalf("json: %d headers: %q", len(got.Headers), out)
		}
		h := got.Headers[0]
		switch {
		case utf8.ValidString(hkey) && h.Key != hkey:
			t.Fatalf("json header key %q, want %q", h.Key, hkey)
		case hval == nil && (h.Value != nil || h.ValueBase64 != nil):
			t.Fatalf("json: a null header value is not null: %q", out)
		case hval != nil && utf8.Valid(hval) && (h.Value == nil || *h.Value != string(hval)):
			t.Fatalf("json: header value %v, want %q", h.Value, hval)
		case hval != nil && !utf8.Valid(hval):
			if h.ValueBase64 == nil {
				t.Fatalf("json: a binary header value has no value_base64: %q", out)
			}
			if b, err := base64.StdEncoding.DecodeString(*h.ValueBase64); err != nil || !bytes.Equal(b, hval) {
				t.Fatalf("json: header value_base64 does not decode to %q: %q", hval, out)
			}
		}
	})
}

func TestUnescapeAndSplit(t *testing.T) {
	for in, want := range map[string]string{`:`: ":", `\t`: "\t", `\n`: "\n", `\0`: "\x00", `a\\b`: `a\b`, `::`: "::"} {
		got, err := unescape(in)
		if err != nil || string(got) != want {
			t.Errorf("unescape(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{`\`, `\x`} {
		if _, err := unescape(in); err == nil {
			t.Errorf("unescape(%q): no error", in)
		}
	}
}

func TestParseConfigs(t *testing.T) {
	got, err := parseConfigs("--set", []string{"a=1,b=2", "c=x,y", "d=", "e=0:1,1:1,f=3"})
	if err != nil {
		t.Fatal(err)
	}
	want := [][2]string{{"a", "1"}, {"b", "2"}, {"c", "x,y"}, {"d", ""}, {"e", "0:1,1:1"}, {"f", "3"}}
	if len(got) != len(want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	if _, err := parseConfigs("--set", []string{"novalue"}); err == nil {
		t.Fatal("novalue: no error")
	}
}

func TestParseTime(t *testing.T) {
	for in, want := range map[string]int64{
		"1700000000000":        1700000000000,
		"2024-05-01T12:00:00Z": 1714564800000,
		"1970-01-01T00:00:02Z": 2000,
	} {
		got, err := parseTime("--timestamp", in)
		if err != nil || got.UnixMilli() != want {
			t.Errorf("parseTime(%q) = %d, %v; want %d", in, got.UnixMilli(), err, want)
		}
	}
	got, err := parseTime("--timestamp", "-1h")
	if d := time.Since(got); err != nil || d < time.Hour || d > time.Hour+time.Minute {
		t.Errorf("parseTime(-1h) = %v, %v", got, err)
	}
	if _, err := parseTime("--timestamp", "soon"); err == nil {
		t.Error("parseTime(soon): no error")
	}
}

func TestLineParser(t *testing.T) {
	pf := &produceFlags{keySep: ":", parseHeaders: true, headersDelim: `\t`, headerSep: ",", headerKVSep: "=", headers: []string{"s=1"}, partition: -1}
	lp, err := pf.parser("t")
	if err != nil {
		t.Fatal(err)
	}
	r := lp.record([]byte("a=1,b\tk:v:w"))
	if string(r.Key) != "k" || string(r.Value) != "v:w" || len(r.Headers) != 3 ||
		r.Headers[0].Key != "a" || string(r.Headers[0].Value) != "1" || r.Headers[1].Key != "b" || r.Headers[1].Value != nil || r.Headers[2].Key != "s" {
		t.Fatalf("record: key %q value %q headers %v", r.Key, r.Value, r.Headers)
	}
	r = lp.record([]byte(""))
	if r.Key != nil || r.Value == nil || len(r.Value) != 0 || len(r.Headers) != 1 {
		t.Fatalf("empty line: key %v value %v headers %v", r.Key, r.Value, r.Headers)
	}
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[int64]string{-1: "-", 0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 5 << 30: "5.0 GiB"} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
