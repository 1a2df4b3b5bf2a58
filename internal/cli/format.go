package cli

import (
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/stromhq/strom/internal/jsonenc"
	"github.com/twmb/franz-go/pkg/kgo"
)

// formatHelp documents --format for consume (and produce's report).
const formatHelp = `A format is text with tokens, as in kcat:

  %t  topic            %p  partition          %o  offset
  %k  key              %v  value (also %s)    %h  headers, k=v,k=v
  %T  timestamp (ms)   %K  key length         %S  value length (also %V)
  %%  a literal %

and the escapes \n \r \t \\. A null key or value prints as nothing (as "null"
with Kafka's --property print.*, as its console consumer does) and
has length -1.

--format json prints one JSON object per line, the same as the console's
HTTP API:

  {"topic":"t","partition":0,"offset":42,"timestamp":1700000000000,
   "key":"k","key_encoding":"text","value":{"temp":21.5},
   "value_encoding":"json","headers":[{"key":"h","value":"x"}],"size":14}

A key or value that is valid JSON is embedded as JSON ("json"), other
UTF-8 text is a string ("text"), anything else base64 ("base64"); a null
key or value is null. Headers are a list, in record order; a header value
that is not UTF-8 is "value_base64".`

// Format is a compiled output format: literal text and record fields.
// The zero value is not usable; use ParseFormat.
type Format struct {
	parts []formatPart
	json  bool
	// kafkaNulls prints a null key or value as "null", as Kafka's console
	// consumer does (--property print.*); kcat's tokens print nothing.
	kafkaNulls bool
}

type formatPart struct {
	field byte   // the token letter, or 0 for literal text
	lit   []byte // literal text when field is 0
}

// ParseFormat compiles a format string; "json" selects the JSON output.
// Errors name the position of the bad token.
func ParseFormat(s string) (*Format, error) {
	if s == "json" {
		return &Format{json: true}, nil
	}
	f := &Format{}
	var lit []byte
	flush := func() {
		if len(lit) > 0 {
			f.parts = append(f.parts, formatPart{lit: lit})
			lit = nil
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '%':
			if i+1 >= len(s) {
				return nil, fmt.Errorf("%% at the end, position %d: write %%%% for a literal %%", i+1)
			}
			i++
			switch t := s[i]; t {
			case '%':
				lit = append(lit, '%')
			case 't', 'p', 'o', 'k', 'v', 's', 'h', 'T', 'K', 'S', 'V':
				flush()
				f.parts = append(f.parts, formatPart{field: t})
			default:
				r, _ := utf8.DecodeRuneInString(s[i:])
				return nil, fmt.Errorf("unknown token %%%c at position %d: known tokens are %%t %%p %%o %%k %%v %%s %%h %%T %%K %%S %%V %%%%", r, i)
			}
		case '\\':
			if i+1 >= len(s) {
				return nil, fmt.Errorf(`\ at the end, position %d: write \\ for a literal backslash`, i+1)
			}
			i++
			switch e := s[i]; e {
			case 'n':
				lit = append(lit, '\n')
			case 'r':
				lit = append(lit, '\r')
			case 't':
				lit = append(lit, '\t')
			case '\\':
				lit = append(lit, '\\')
			default:
				r, _ := utf8.DecodeRuneInString(s[i:])
				return nil, fmt.Errorf(`unknown escape \%c at position %d: known escapes are \n \r \t \\`, r, i)
			}
		default:
			lit = append(lit, c)
		}
	}
	flush()
	return f, nil
}

// Append renders r after dst and returns the extended slice.
func (f *Format) Append(dst []byte, r *kgo.Record) []byte {
	if f.json {
		return append(jsonenc.AppendRecord(dst, r), '\n')
	}
	for _, p := range f.parts {
		switch p.field {
		case 0:
			dst = append(dst, p.lit...)
		case 't':
			dst = append(dst, r.Topic...)
		case 'p':
			dst = strconv.AppendInt(dst, int64(r.Partition), 10)
		case 'o':
			dst = strconv.AppendInt(dst, r.Offset, 10)
		case 'k':
			dst = f.appendBytes(dst, r.Key)
		case 'v', 's':
			dst = f.appendBytes(dst, r.Value)
		case 'h':
			for i, h := range r.Headers {
				if i > 0 {
					dst = append(dst, ',')
				}
				dst = append(dst, h.Key...)
				dst = append(dst, '=')
				dst = append(dst, h.Value...)
			}
		case 'T':
			dst = strconv.AppendInt(dst, r.Timestamp.UnixMilli(), 10)
		case 'K':
			dst = appendLen(dst, r.Key)
		case 'S', 'V':
			dst = appendLen(dst, r.Value)
		}
	}
	return dst
}

func (f *Format) appendBytes(dst, b []byte) []byte {
	if b == nil && f.kafkaNulls {
		return append(dst, "null"...)
	}
	return append(dst, b...)
}

func appendLen(dst, b []byte) []byte {
	if b == nil {
		return append(dst, "-1"...)
	}
	return strconv.AppendInt(dst, int64(len(b)), 10)
}
