package console

import (
	"net/url"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestFilter(t *testing.T) {
	rec := &kgo.Record{
		Key:     []byte("s3"),
		Value:   []byte(`{"sensor":"s3","value":21.5,"ok":true,"none":null,"nested":{"deep":[1,"two",3]},"str":"12.5"}`),
		Headers: []kgo.RecordHeader{{Key: "source", Value: []byte("http")}},
	}
	tests := []struct {
		query string
		match bool
	}{
		{"", true},
		{"key=s3", true},
		{"key=s", false},
		{"key_prefix=s", true},
		{"key_prefix=x", false},
		{"header=source=http", true},
		{"header=source=kafka", false},
		{"header=missing=x", false},
		{"where=value > 21", true},
		{"where=value >= 21.5", true},
		{"where=value > 21.5", false},
		{"where=value < 22", true},
		{"where=value <= 21.4", false},
		{"where=value == 21.5", true},
		{"where=value != 21.5", false},
		{`where=sensor == "s3"`, true},
		{"where=sensor == s3", true},
		{"where=sensor != s4", true},
		{"where=sensor ~ 3", true},
		{"where=sensor > s2", true},
		{"where=ok == true", true},
		{"where=ok != true", false},
		{"where=none == null", true},
		{"where=sensor == null", false},
		{"where=nested.deep.1 == two", true},
		{"where=nested.deep.2 > 2", true},
		{"where=nested.deep.9 > 2", false},
		{"where=missing == 1", false},
		{"where=str > 12", true},
		{"where=value>21&where=sensor==s3", true},
		{"where=value>21&where=sensor==s4", false},
		{"key=s3&where=value < 0", false},
	}
	for _, tt := range tests {
		q, err := url.ParseQuery(tt.query)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parseFilter(q)
		if err != nil {
			t.Errorf("%q: %v", tt.query, err)
			continue
		}
		if got := f.match(rec); got != tt.match {
			t.Errorf("%q: match = %v, want %v", tt.query, got, tt.match)
		}
	}
	// Values that are not JSON fail every predicate, and not the others.
	text := &kgo.Record{Key: []byte("k"), Value: []byte("plain")}
	for q, want := range map[string]bool{"where=a == 1": false, "key=k": true, "where=. == plain": false} {
		qq, _ := url.ParseQuery(q)
		f, err := parseFilter(qq)
		if err != nil {
			t.Fatal(err)
		}
		if got := f.match(text); got != want {
			t.Errorf("text value %q: %v, want %v", q, got, want)
		}
	}
	num := &kgo.Record{Value: []byte("42")}
	f, _ := parseFilter(url.Values{"where": {". > 40"}})
	if !f.match(num) {
		t.Error(`". > 40" does not match the value 42`)
	}
}

func TestFilterMistakes(t *testing.T) {
	for _, w := range []string{"value", "value >> 3", "> 3", "value ==", "val ue == 1", "value == {\"a\":1}", "value == [1]", "value > true", `value == "unterminated`, "a[0] == 1"} {
		if _, err := parseFilter(url.Values{"where": {w}}); err == nil {
			t.Errorf("where %q: no error", w)
		} else if ae := httpError(err); ae.Status != 400 || ae.Code != "bad_filter" {
			t.Errorf("where %q: %+v", w, ae)
		}
	}
	if _, err := parseFilter(url.Values{"header": {"nameonly"}}); err == nil {
		t.Error("header without a value: no error")
	}
}

// FuzzFilter: parsing any filter and matching any record never panics.
func FuzzFilter(f *testing.F) {
	f.Add("value > 21", []byte(`{"value":22}`))
	f.Add("a.b.0 == \"x\"", []byte(`{"a":{"b":["x"]}}`))
	f.Add(". ~ abc", []byte(`"xabcx"`))
	f.Add("n != null", []byte(`{"n":1e400}`))
	f.Fuzz(func(t *testing.T, where string, value []byte) {
		flt, err := parseFilter(url.Values{"where": {where}, "key_prefix": {"k"}})
		if err != nil {
			return
		}
		flt.match(&kgo.Record{Key: []byte("k1"), Value: value})
	})
}
