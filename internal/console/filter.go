package console

import (
	"bytes"
	"encoding/json"
	"net/url"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
)

// filter is a server-side record filter, from query parameters shared by
// message pages and streams. All given conditions must hold.
//
//	key=K             the key is exactly K
//	key_prefix=P      the key starts with P
//	header=NAME=V     a header NAME has the value V (repeatable)
//	where=EXPR        predicates on the JSON value (repeatable)
//
// EXPR is predicates PATH OP LIT joined by and, or, not and parentheses
// (grammar in filterexpr.go). PATH is a dotted path into the value (sensor, reading.temp, items.0.id;
// "." alone is the whole value). OP is one of == != > >= < <= and ~
// (the string contains). LIT is a JSON literal (21.5, "s3", true, null)
// or a bare word, taken as a string. A value that is not JSON, or lacks
// the path, fails every predicate.
type filter struct {
	key       *string
	keyPrefix *string
	headers   []headerEq
	where     []expr
	// Text is the filter as given, for logs and replies.
	text string
}

type headerEq struct{ name, value string }

type predicate struct {
	path []string
	op   string
	lit  any // float64, string, bool or nil
}

// ops, longest first so that ">=" is not read as ">".
var ops = []string{"==", "!=", ">=", "<=", ">", "<", "~"}

// parseFilter reads the filter parameters of q; nil when there are none.
func parseFilter(q url.Values) (*filter, error) {
	f := &filter{}
	var text []string
	if q.Has("key") {
		k := q.Get("key")
		f.key = &k
		text = append(text, "key="+k)
	}
	if q.Has("key_prefix") {
		p := q.Get("key_prefix")
		f.keyPrefix = &p
		text = append(text, "key_prefix="+p)
	}
	for _, h := range q["header"] {
		name, value, ok := strings.Cut(h, "=")
		if !ok || name == "" {
			return nil, badRequest("bad_filter", "header filter %q: want name=value", h)
		}
		f.headers = append(f.headers, headerEq{name, value})
		text = append(text, "header="+h)
	}
	for _, w := range q["where"] {
		e, err := parseWhere(w)
		if err != nil {
			return nil, err
		}
		f.where = append(f.where, e)
		text = append(text, "where="+w)
	}
	if len(text) == 0 {
		return nil, nil
	}
	f.text = strings.Join(text, "&")
	return f, nil
}

// match reports whether r passes the filter. A nil filter passes all.
func (f *filter) match(r *kgo.Record) bool {
	if f == nil {
		return true
	}
	if f.key != nil && (r.Key == nil || string(r.Key) != *f.key) {
		return false
	}
	if f.keyPrefix != nil && (r.Key == nil || !bytes.HasPrefix(r.Key, []byte(*f.keyPrefix))) {
		return false
	}
	for _, h := range f.headers {
		found := false
		for _, rh := range r.Headers {
			if rh.Key == h.name && string(rh.Value) == h.value {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	if len(f.where) == 0 {
		return true
	}
	d := json.NewDecoder(bytes.NewReader(r.Value))
	d.UseNumber()
	var doc any
	if r.Value == nil || d.Decode(&doc) != nil {
		return false
	}
	for _, e := range f.where {
		if !e.eval(doc) {
			return false
		}
	}
	return true
}

func (p predicate) eval(doc any) bool {
	v := doc
	for _, seg := range p.path {
		switch m := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = m[seg]; !ok {
				return false
			}
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(m) {
				return false
			}
			v = m[i]
		default:
			return false
		}
	}
	switch lit := p.lit.(type) {
	case nil:
		return (v == nil) == (p.op == "==")
	case bool:
		b, ok := v.(bool)
		return ok && (b == lit) == (p.op == "==")
	case float64:
		var f float64
		switch n := v.(type) {
		case json.Number:
			var err error
			if f, err = n.Float64(); err != nil {
				return false
			}
		case string:
			// A number kept as a string ("21.5") still compares.
			var err error
			if f, err = strconv.ParseFloat(n, 64); err != nil {
				return p.op == "!="
			}
		default:
			return p.op == "!="
		}
		return compare(p.op, cmpFloat(f, lit))
	case string:
		var s string
		switch n := v.(type) {
		case string:
			s = n
		case json.Number:
			s = n.String()
		default:
			return p.op == "!="
		}
		if p.op == "~" {
			return strings.Contains(s, lit)
		}
		return compare(p.op, strings.Compare(s, lit))
	}
	return false
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func compare(op string, c int) bool {
	switch op {
	case "==":
		return c == 0
	case "!=":
		return c != 0
	case ">":
		return c > 0
	case ">=":
		return c >= 0
	case "<":
		return c < 0
	case "<=":
		return c <= 0
	}
	return false
}
