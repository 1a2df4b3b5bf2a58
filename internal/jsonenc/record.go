package jsonenc

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"
)

// How a record is shown as JSON (the console's pages and streams, the
// HTTP API, `strom consume -f json`):
//
//	{"topic":"t","partition":0,"offset":7,"timestamp":1700000000000,
//	 "key":"s3","key_encoding":"text",
//	 "value":{"sensor":"s3","value":21.7},"value_encoding":"json",
//	 "headers":[{"key":"h","value":"v"}],"size":42}
//
// A key or value that is valid JSON is embedded as JSON ("json"); other
// valid UTF-8 is a string ("text"); anything else is base64 ("base64").
// A null key or value is null with no encoding. This is the inverse of
// produce, where a JSON string is stored as its UTF-8 bytes and any other
// JSON value as its JSON text; the encoding says which it was, so a
// stored `"abc"` (json) and a stored abc (text) stay distinct.

// Encodings of a key or value.
const (
	encJSON   = "json"
	encText   = "text"
	encBase64 = "base64"
)

// AppendRecord appends r as one JSON object without a newline. Embedded
// JSON is compacted, so the object never contains a raw newline (SSE
// frames are line based).
func AppendRecord(dst []byte, r *kgo.Record) []byte {
	dst = append(dst, `{"topic":`...)
	dst = AppendString(dst, r.Topic)
	dst = append(dst, `,"partition":`...)
	dst = strconv.AppendInt(dst, int64(r.Partition), 10)
	dst = append(dst, `,"offset":`...)
	dst = strconv.AppendInt(dst, r.Offset, 10)
	dst = append(dst, `,"timestamp":`...)
	dst = strconv.AppendInt(dst, r.Timestamp.UnixMilli(), 10)
	dst = appendBytesField(dst, "key", r.Key)
	dst = appendBytesField(dst, "value", r.Value)
	dst = append(dst, `,"headers":[`...)
	for i, h := range r.Headers {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"key":`...)
		dst = AppendString(dst, h.Key)
		switch {
		case h.Value == nil:
			dst = append(dst, `,"value":null`...)
		case utf8.Valid(h.Value):
			dst = append(dst, `,"value":`...)
			dst = AppendString(dst, string(h.Value))
		default:
			dst = append(dst, `,"value_base64":"`...)
			dst = base64.StdEncoding.AppendEncode(dst, h.Value)
			dst = append(dst, '"')
		}
		dst = append(dst, '}')
	}
	dst = append(dst, `],"size":`...)
	dst = strconv.AppendInt(dst, int64(len(r.Key)+len(r.Value)), 10)
	return append(dst, '}')
}

// appendBytesField appends ,"name":<value>,"name_encoding":"..." for a
// key or value.
func appendBytesField(dst []byte, name string, b []byte) []byte {
	dst = append(dst, ',', '"')
	dst = append(dst, name...)
	dst = append(dst, '"', ':')
	enc := ""
	switch {
	case b == nil:
		return append(dst, "null"...)
	case json.Valid(b):
		var buf bytes.Buffer
		json.Compact(&buf, b) // cannot fail: b is valid
		dst = append(dst, buf.Bytes()...)
		enc = encJSON
	case utf8.Valid(b):
		dst = AppendString(dst, string(b))
		enc = encText
	default:
		dst = append(dst, '"')
		dst = base64.StdEncoding.AppendEncode(dst, b)
		dst = append(dst, '"')
		enc = encBase64
	}
	dst = append(dst, `,"`...)
	dst = append(dst, name...)
	dst = append(dst, `_encoding":"`...)
	dst = append(dst, enc...)
	return append(dst, '"')
}
