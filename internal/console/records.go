package console

import (
	"bytes"
	"encoding/json"
)

// Records are shown as JSON by jsonenc.AppendRecord; bytesFromJSON below is
// its inverse for produce.

// bytesFromJSON is how produce stores a JSON key or value: absent or null
// is a null key/value, a string is its UTF-8 bytes, anything else its
// compacted JSON text.
func bytesFromJSON(raw json.RawMessage) []byte {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return []byte(s)
		}
	}
	var buf bytes.Buffer
	if json.Compact(&buf, raw) != nil {
		return append([]byte(nil), raw...)
	}
	return buf.Bytes()
}
