package jsonenc

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", "q\"b\\s/", "\n\r\t\x00\x1f\x7f", "héllo ✓ 𝄞", "a\u2028b\u2029c", "bad\xffutf8\xc3", "<script>&"} {
		got := AppendString(nil, s)
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("%q: invalid JSON %s: %v", s, got, err)
		}
		if want := viaEncodingJSON(t, s); back != want {
			t.Fatalf("%q: round trip %q", s, back)
		}
		if string(AppendString(nil, []byte(s))) != string(got) {
			t.Fatalf("%q: string and []byte forms differ", s)
		}
		if strings.ContainsRune(string(got), '\u2028') || strings.ContainsRune(string(got), '\u2029') {
			t.Fatalf("%q: raw U+2028/9 in %s", s, got)
		}
	}
}

func FuzzAppendString(f *testing.F) {
	f.Add([]byte("a\"\\\n\u2028\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		out := AppendString([]byte("x"), b)
		var back string
		if err := json.Unmarshal(out[1:], &back); err != nil {
			t.Fatalf("invalid JSON %q: %v", out, err)
		}
		if !utf8.ValidString(back) || back != viaEncodingJSON(t, string(b)) {
			t.Fatalf("round trip of %q gave %q", b, back)
		}
	})
}

// viaEncodingJSON is what encoding/json makes of s: each invalid byte
// becomes U+FFFD.
func viaEncodingJSON(t *testing.T, s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var back string
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	return back
}
