package console

import (
	"fmt"
	"math/rand"
	"net/url"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestFilterLogic: the filters (issue 23): or, and, not and
// parentheses mean what they say. Before the parser, "sensor == s3 or
// sensor == s1" compared sensor with the text "s3 or sensor == s1".
func TestFilterLogic(t *testing.T) {
	recs := map[string]*kgo.Record{}
	for _, r := range []struct {
		sensor string
		value  float64
	}{{"s1", 10}, {"s1", 25}, {"s2", 30}, {"s3", 15}, {"s3", 22}} {
		recs[fmt.Sprintf("%s/%g", r.sensor, r.value)] = &kgo.Record{Value: []byte(fmt.Sprintf(`{"sensor":%q,"value":%g}`, r.sensor, r.value))}
	}
	tests := []struct {
		where string
		want  string // the matching records, sorted
	}{
		{"sensor == s3 or sensor == s1", "s1/10 s1/25 s3/15 s3/22"},
		{"value > 20 and sensor == s3", "s3/22"},
		{"value > 20 or sensor == s1", "s1/10 s1/25 s2/30 s3/22"},
		{"value > 20   or   sensor == s3", "s1/25 s2/30 s3/15 s3/22"},
		{"not sensor == s1", "s2/30 s3/15 s3/22"},
		{"not (sensor == s1 or sensor == s2)", "s3/15 s3/22"},
		{"sensor == s1 or sensor == s2 and value > 26", "s1/10 s1/25 s2/30"},
		{"(sensor == s1 or sensor == s2) and value > 26", "s2/30"},
		{"not not sensor == s2", "s2/30"},
		{"(value<20)or(value>=30)", "s1/10 s2/30 s3/15"},
		{`sensor == "s1" and not value == 10`, "s1/25"},
	}
	for _, tt := range tests {
		f, err := parseFilter(url.Values{"where": {tt.where}})
		if err != nil {
			t.Errorf("%q: %v", tt.where, err)
			continue
		}
		var got []string
		for _, name := range []string{"s1/10", "s1/25", "s2/30", "s3/15", "s3/22"} {
			if f.match(recs[name]) {
				got = append(got, name)
			}
		}
		if g := strings.Join(got, " "); g != tt.want {
			t.Errorf("%q: matches %q, want %q", tt.where, g, tt.want)
		}
	}
}

// TestFilterLogicMistakes: malformed expressions are a 400 bad_filter.
func TestFilterLogicMistakes(t *testing.T) {
	for _, w := range []string{
		"value > 20 or", "or value > 20", "value > 20 and and sensor == s1",
		"(value > 20", "value > 20)", "not", "()", "value > 20 sensor == s1",
		"sensor == or", "value > (20)", "sensor == s1 xor sensor == s2", "   ",
		strings.Repeat("(", 200) + "a == 1" + strings.Repeat(")", 200),
	} {
		_, err := parseFilter(url.Values{"where": {w}})
		if err == nil {
			t.Errorf("where %q: no error", w)
			continue
		}
		if ae := httpError(err); ae.Status != 400 || ae.Code != "bad_filter" {
			t.Errorf("where %q: %+v", w, ae)
		}
	}
	// A keyword quoted is a value.
	f, err := parseFilter(url.Values{"where": {`sensor == "or"`}})
	if err != nil || !f.match(&kgo.Record{Value: []byte(`{"sensor":"or"}`)}) {
		t.Errorf(`sensor == "or": %v`, err)
	}
}

// genExpr is a generated where expression: its text and a reference
// evaluation of the tree it was printed from.
type genExpr struct {
	kind      string // "leaf", "and", "or", "not"
	l, r      *genExpr
	field, op string
	num       int
	str       string
	prec      int // 1 or, 2 and, 3 not and leaves
}

func genTree(rng *rand.Rand, depth int) *genExpr {
	if depth == 0 || rng.Intn(3) == 0 {
		g := &genExpr{kind: "leaf", prec: 3}
		if rng.Intn(3) == 0 {
			g.field = "s"
			g.op = []string{"==", "!="}[rng.Intn(2)]
			g.str = []string{"x", "y", "z"}[rng.Intn(3)]
		} else {
			g.field = []string{"a", "b", "n.c"}[rng.Intn(3)]
			g.op = []string{"==", "!=", ">", ">=", "<", "<="}[rng.Intn(6)]
			g.num = rng.Intn(4)
		}
		return g
	}
	switch rng.Intn(3) {
	case 0:
		return &genExpr{kind: "not", l: genTree(rng, depth-1), prec: 3}
	case 1:
		return &genExpr{kind: "and", l: genTree(rng, depth-1), r: genTree(rng, depth-1), prec: 2}
	}
	return &genExpr{kind: "or", l: genTree(rng, depth-1), r: genTree(rng, depth-1), prec: 1}
}

// print writes g with the parentheses precedence needs, and sometimes
// more, with random spacing where spacing is optional.
func (g *genExpr) print(rng *rand.Rand, b *strings.Builder, min int) {
	sp := func() {
		b.WriteString([]string{"", " ", "  ", "\t"}[rng.Intn(4)])
	}
	ws := func() { // a space where a word ends
		b.WriteString([]string{" ", "  ", "\t"}[rng.Intn(3)])
	}
	// and/or are left-associative: a right operand of the same
	// precedence needs parentheses (min is one more then).
	paren := g.prec < min || rng.Intn(6) == 0
	if paren {
		b.WriteString("(")
		sp()
	}
	switch g.kind {
	case "leaf":
		b.WriteString(g.field)
		sp()
		b.WriteString(g.op)
		sp()
		if g.field == "s" {
			if rng.Intn(2) == 0 {
				fmt.Fprintf(b, "%q", g.str)
			} else {
				b.WriteString(g.str)
			}
		} else {
			fmt.Fprint(b, g.num)
		}
	case "not":
		b.WriteString("not")
		ws()
		g.l.print(rng, b, 3)
	default:
		g.l.print(rng, b, g.prec)
		ws()
		b.WriteString(g.kind)
		ws()
		g.r.print(rng, b, g.prec+1)
	}
	if paren {
		sp()
		b.WriteString(")")
	}
}

func (g *genExpr) ref(a, bb, c int, s string) bool {
	switch g.kind {
	case "not":
		return !g.l.ref(a, bb, c, s)
	case "and":
		return g.l.ref(a, bb, c, s) && g.r.ref(a, bb, c, s)
	case "or":
		return g.l.ref(a, bb, c, s) || g.r.ref(a, bb, c, s)
	}
	if g.field == "s" {
		return (s == g.str) == (g.op == "==")
	}
	v := map[string]int{"a": a, "b": bb, "n.c": c}[g.field]
	switch g.op {
	case "==":
		return v == g.num
	case "!=":
		return v != g.num
	case ">":
		return v > g.num
	case ">=":
		return v >= g.num
	case "<":
		return v < g.num
	}
	return v <= g.num
}

// TestFilterProperty: for generated expression trees, printed with
// random spacing and parentheses, the parser's evaluation equals a
// reference evaluation of the tree, on every record of a small grid.
func TestFilterProperty(t *testing.T) {
	rng := rand.New(rand.NewSource(23))
	for i := 0; i < 2000; i++ {
		g := genTree(rng, 5)
		var b strings.Builder
		sp := []string{"", " "}[rng.Intn(2)]
		b.WriteString(sp)
		g.print(rng, &b, 0)
		b.WriteString(sp)
		text := b.String()
		f, err := parseFilter(url.Values{"where": {text}})
		if err != nil {
			t.Fatalf("%q: %v", text, err)
		}
		for a := 0; a < 4; a++ {
			for bb := 0; bb < 4; bb++ {
				for c := 0; c < 4; c += 3 {
					for _, s := range []string{"x", "y"} {
						rec := &kgo.Record{Value: []byte(fmt.Sprintf(`{"a":%d,"b":%d,"n":{"c":%d},"s":%q}`, a, bb, c, s))}
						if got, want := f.match(rec), g.ref(a, bb, c, s); got != want {
							t.Fatalf("%q on a=%d b=%d n.c=%d s=%s: %v, reference %v", text, a, bb, c, s, got, want)
						}
					}
				}
			}
		}
	}
}
