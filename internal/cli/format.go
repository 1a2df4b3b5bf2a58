package cli

import (
	"encoding/base64"
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

and the escapes \n \r \t \\. A null key or value prints as nothing and
has length -1.

--format json prints one JSON object per line:

  {"topic":"t","partition":0,"offset":42,"timestamp":1700000000000,
   "key":"k","value":"v","headers":{"h":"x"}}

A key, value or header value that is not valid UTF-8 is base64 and
flagged: "key_encoding":"base64", "value_encoding":"base64", or
"headers_encoding":{"h":"base64"}. A null key or value is null. A header
repeated on a record appears repeatedly in the object, in record order.`

// Format is a compiled output format: literal text and record fields.
// The zero value is not usable; use ParseFormat.
type Format struct {
	parts []formatPart
	json  bool
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

// JSON reports whether this is the JSON format.
func (f *Format) JSON() bool { return f.json }

// Append renders r after dst and returns the extended slice.
func (f *Format) Append(dst []byte, r *kgo.Record) []byte {
	if f.json {
		return appendRecordJSON(dst, r)
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
			dst = append(dst, r.Key...)
		case 'v', 's':
			dst = append(dst, r.Value...)
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

func appendLen(dst, b []byte) []byte {
	if b == nil {
		return append(dst, "-1"...)
	}
	return strconv.AppendInt(dst, int64(len(b)), 10)
}

// appendRecordJSON writes one record as a JSON object and a newline. It
// is hand-written rather than encoding/json because consume prints
// millions of these, and because the key order is part of the contract.
func appendRecordJSON(dst []byte, r *kgo.Record) []byte {
	dst = append(dst, `{"topic":`...)
	dst = jsonenc.AppendString(dst, r.Topic)
	dst = append(dst, `,"partition":`...)
	dst = strconv.AppendInt(dst, int64(r.Partition), 10)
	dst = append(dst, `,"offset":`...)
	dst = strconv.AppendInt(dst, r.Offset, 10)
	dst = append(dst, `,"timestamp":`...)
	dst = strconv.AppendInt(dst, r.Timestamp.UnixMilli(), 10)
	dst = appendJSONBytes(dst, "key", r.Key)
	dst = appendJSONBytes(dst, "value", r.Value)
	dst = append(dst, `,"headers":{`...)
	var binary bool
	for i, h := range r.Headers {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = jsonenc.AppendString(dst, h.Key)
		dst = append(dst, ':')
		switch {
		case h.Value == nil:
			dst = append(dst, "null"...)
		case utf8.Valid(h.Value):
			dst = jsonenc.AppendString(dst, h.Value)
		default:
			binary = true
			dst = appendBase64(dst, h.Value)
		}
	}
	dst = append(dst, '}')
	if binary {
		dst = append(dst, `,"headers_encoding":{`...)
		first := true
		for _, h := range r.Headers {
			if h.Value == nil || utf8.Valid(h.Value) {
				continue
			}
			if !first {
				dst = append(dst, ',')
			}
			first = false
			dst = jsonenc.AppendString(dst, h.Key)
			dst = append(dst, `:"base64"`...)
		}
		dst = append(dst, '}')
	}
	return append(dst, "}\n"...)
}

// appendJSONBytes writes `,"name":value` with value a string, base64 with
// a "name_encoding" member, or null.
func appendJSONBytes(dst []byte, name string, b []byte) []byte {
	dst = append(dst, ',', '"')
	dst = append(dst, name...)
	dst = append(dst, '"', ':')
	switch {
	case b == nil:
		return append(dst, "null"...)
	case utf8.Valid(b):
		return jsonenc.AppendString(dst, b)
	}
	dst = appendBase64(dst, b)
	dst = append(dst, ',', '"')
	dst = append(dst, name...)
	return append(dst, `_encoding":"base64"`...)
}

func appendBase64(dst, b []byte) []byte {
	dst = append(dst, '"')
	dst = base64.StdEncoding.AppendEncode(dst, b)
	return append(dst, '"')
}
