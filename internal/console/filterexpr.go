package console

import (
	"encoding/json"
	"strings"
)

// A where expression is predicates joined by and, or and not, with
// parentheses; the grammar, read by a recursive-descent parser over the
// text (no separate token pass: what a literal is depends on where it is):
//
//	expr  = and { "or" and }
//	and   = unary { "and" unary }
//	unary = "not" unary | "(" expr ")" | PATH OP LIT
//
// not binds tightest, then and, then or, as in SQL. The keywords are
// lower case words on their own; a bare literal that is a keyword must be
// quoted (sensor == "or"). A bare literal runs to the next space or
// parenthesis; a string with either needs quotes.

// expr is a parsed where expression.
type expr interface {
	eval(doc any) bool
}

type andExpr struct{ l, r expr }
type orExpr struct{ l, r expr }
type notExpr struct{ e expr }

func (e andExpr) eval(doc any) bool { return e.l.eval(doc) && e.r.eval(doc) }
func (e orExpr) eval(doc any) bool  { return e.l.eval(doc) || e.r.eval(doc) }
func (e notExpr) eval(doc any) bool { return !e.e.eval(doc) }

// exprParser reads one where parameter; pos is the next byte of s.
type exprParser struct {
	s   string
	pos int
}

// parseWhere parses a where parameter into an expression, or returns a
// 400 bad_filter that says what is wrong and where.
func parseWhere(s string) (expr, error) {
	p := &exprParser{s: s}
	e, err := p.or(0)
	if err != nil {
		return nil, err
	}
	p.space()
	if p.pos < len(p.s) {
		if p.s[p.pos] == ')' {
			return nil, p.fail("a ) without its (")
		}
		return nil, p.fail("expected and, or or the end")
	}
	return e, nil
}

func (p *exprParser) fail(why string) error {
	return badRequest("bad_filter", "where %q: %s at column %d (want PATH OP VALUE joined by and, or, not and parentheses, e.g. where=value > 21.5 or sensor == \"s3\")", p.s, why, p.pos+1)
}

func (p *exprParser) space() {
	for p.pos < len(p.s) && isSpace(p.s[p.pos]) {
		p.pos++
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// keyword consumes the word kw when it comes next and stands alone
// (followed by a space, a parenthesis or the end).
func (p *exprParser) keyword(kw string) bool {
	p.space()
	if !strings.HasPrefix(p.s[p.pos:], kw) {
		return false
	}
	end := p.pos + len(kw)
	if end < len(p.s) && !isSpace(p.s[end]) && p.s[end] != '(' && p.s[end] != ')' {
		return false
	}
	p.pos = end
	return true
}

func (p *exprParser) or(depth int) (expr, error) {
	l, err := p.and(depth)
	if err != nil {
		return nil, err
	}
	for p.keyword("or") {
		r, err := p.and(depth)
		if err != nil {
			return nil, err
		}
		l = orExpr{l, r}
	}
	return l, nil
}

func (p *exprParser) and(depth int) (expr, error) {
	l, err := p.unary(depth)
	if err != nil {
		return nil, err
	}
	for p.keyword("and") {
		r, err := p.unary(depth)
		if err != nil {
			return nil, err
		}
		l = andExpr{l, r}
	}
	return l, nil
}

// maxDepth bounds nesting, so that a hostile filter cannot grow the stack.
const maxDepth = 100

func (p *exprParser) unary(depth int) (expr, error) {
	if depth > maxDepth {
		return nil, p.fail("nested too deep")
	}
	p.space()
	if p.pos >= len(p.s) {
		if strings.TrimSpace(p.s) == "" {
			return nil, p.fail("empty")
		}
		return nil, p.fail("expected a predicate")
	}
	if p.keyword("not") {
		e, err := p.unary(depth + 1)
		if err != nil {
			return nil, err
		}
		return notExpr{e}, nil
	}
	if p.s[p.pos] == '(' {
		p.pos++
		e, err := p.or(depth + 1)
		if err != nil {
			return nil, err
		}
		p.space()
		if p.pos >= len(p.s) || p.s[p.pos] != ')' {
			return nil, p.fail("a ( without its )")
		}
		p.pos++
		return e, nil
	}
	return p.predicate()
}

func isPathByte(c byte) bool {
	return c == '.' || c == '_' || c == '-' || c == '$' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// predicate reads PATH OP LIT.
func (p *exprParser) predicate() (expr, error) {
	start := p.pos
	for p.pos < len(p.s) && isPathByte(p.s[p.pos]) {
		p.pos++
	}
	path := p.s[start:p.pos]
	p.space()
	op := ""
	for _, o := range ops {
		if strings.HasPrefix(p.s[p.pos:], o) {
			op = o
			break
		}
	}
	if op == "" {
		switch {
		case p.pos >= len(p.s):
			return nil, p.fail("no operator, one of == != > >= < <= ~")
		case path == "":
			return nil, p.fail("expected a field (letters, digits and . _ - $)")
		default:
			return nil, p.fail("expected an operator, one of == != > >= < <= ~ (the field may hold letters, digits and . _ - $ only)")
		}
	}
	if path == "" {
		return nil, p.fail("no field before the operator")
	}
	p.pos += len(op)
	p.space()
	if p.pos < len(p.s) && strings.IndexByte("=!<>~", p.s[p.pos]) >= 0 {
		return nil, p.fail("unknown operator")
	}
	pr := predicate{op: op}
	if path != "." {
		pr.path = strings.Split(strings.Trim(path, "."), ".")
	}
	lit, err := p.literal(op)
	if err != nil {
		return nil, err
	}
	pr.lit = lit
	switch pr.lit.(type) {
	case bool, nil:
		if op != "==" && op != "!=" {
			return nil, p.fail("true, false and null compare with == and != only")
		}
	case float64:
		if op == "~" {
			return nil, p.fail("~ (contains) needs a string")
		}
	}
	return pr, nil
}

// literal reads a JSON literal (a quoted string, a number, true, false,
// null) or a bare word, taken as a string. After ~ a number is text: ~ 3
// looks for the digit.
func (p *exprParser) literal(op string) (any, error) {
	if p.pos >= len(p.s) || p.s[p.pos] == ')' || p.s[p.pos] == '(' {
		return nil, p.fail("no value after the operator")
	}
	if p.s[p.pos] == '"' {
		end := p.pos + 1
		for end < len(p.s) && p.s[end] != '"' {
			if p.s[end] == '\\' {
				end++
			}
			end++
		}
		if end >= len(p.s) {
			return nil, p.fail("a string without its closing quote")
		}
		var s string
		if err := json.Unmarshal([]byte(p.s[p.pos:end+1]), &s); err != nil {
			return nil, p.fail("the value is not a valid JSON string")
		}
		p.pos = end + 1
		return s, nil
	}
	start := p.pos
	for p.pos < len(p.s) && !isSpace(p.s[p.pos]) && p.s[p.pos] != '(' && p.s[p.pos] != ')' {
		p.pos++
	}
	word := p.s[start:p.pos]
	switch word {
	case "and", "or", "not":
		p.pos = start
		return nil, p.fail("no value after the operator (quote a value that is a keyword: \"" + word + "\")")
	case "true":
		return true, nil
	case "false":
		return false, nil
	case "null":
		return nil, nil
	}
	if strings.ContainsAny(word, "\"{}[]") {
		p.pos = start
		return nil, p.fail("the value is not a valid JSON literal (compare with a number, a string, true, false or null)")
	}
	var n json.Number
	if c := word[0]; c == '-' || c >= '0' && c <= '9' {
		if err := json.Unmarshal([]byte(word), &n); err == nil {
			if op == "~" {
				return word, nil
			}
			f, err := n.Float64()
			if err != nil {
				p.pos = start
				return nil, p.fail("the number is out of range")
			}
			return f, nil
		}
	}
	return word, nil
}
