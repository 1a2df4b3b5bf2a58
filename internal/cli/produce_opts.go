package cli

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// parser validates the parsing flags (and Kafka's --property spellings of
// them) and returns the line parser for topic.
func (pf *produceFlags) parser(topic string) (*lineParser, error) {
	props := map[string]string{}
	for _, p := range pf.properties {
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			return nil, usageErr("--property %q: want name=value, e.g. parse.key=true", p)
		}
		switch k {
		case "parse.key", "key.separator", "parse.headers", "headers.delimiter", "headers.separator", "headers.key.separator":
			props[k] = v
		default:
			return nil, usageErr("--property %s: not supported; known: parse.key, key.separator, parse.headers, headers.delimiter, headers.separator, headers.key.separator", k)
		}
	}
	// Kafka's console producer: parse.key splits at key.separator, a tab
	// by default; parse.headers takes "k:v,k:v<TAB>" before the key.
	if props["parse.key"] == "true" {
		pf.keySep = orDefault(props["key.separator"], `\t`)
	}
	if props["parse.headers"] == "true" {
		pf.parseHeaders = true
		pf.headersDelim = orDefault(props["headers.delimiter"], `\t`)
		pf.headerSep = orDefault(props["headers.separator"], ",")
		pf.headerKVSep = orDefault(props["headers.key.separator"], ":")
	}
	lp := &lineParser{topic: topic, partition: pf.partition, parseHeaders: pf.parseHeaders, slab: make([]byte, 0, 1<<20)}
	var err error
	for _, s := range []struct {
		flag, v string
		dst     *[]byte
	}{
		{"--key-separator", pf.keySep, &lp.keySep},
		{"--headers-delimiter", orDefault(pf.headersDelim, `\t`), &lp.headersDelim},
		{"--header-separator", pf.headerSep, &lp.headerSep},
		{"--header-key-separator", pf.headerKVSep, &lp.headerKVSep},
	} {
		if *s.dst, err = unescape(s.v); err != nil {
			return nil, usageErr("%s %q: %v", s.flag, s.v, err)
		}
	}
	if pf.parseHeaders && (len(lp.headersDelim) == 0 || len(lp.headerSep) == 0 || len(lp.headerKVSep) == 0) {
		return nil, usageErr("--parse-headers needs a non-empty --headers-delimiter, --header-separator and --header-key-separator")
	}
	if pf.key != "" {
		lp.key = []byte(pf.key)
	}
	for _, h := range pf.headers {
		k, v, ok := strings.Cut(h, "=")
		if !ok || k == "" {
			return nil, usageErr("--header %q: want name=value", h)
		}
		lp.static = append(lp.static, kgo.RecordHeader{Key: k, Value: []byte(v)})
	}
	return lp, nil
}

// defaultMaxMessageBytes is Kafka's message.max.bytes default: the largest
// batch a broker accepts unless the topic says otherwise.
const defaultMaxMessageBytes = 1048588

// batchMaxBytes bounds the batches the producer builds. Many small lines
// must never fill a batch past what a default broker accepts (Kafka and
// Strom answer MESSAGE_TOO_LARGE), while a user who raises --max-line-bytes
// above that (for a topic with a larger max.message.bytes) gets batches that
// can hold such a line; the broker still judges it.
func (pf *produceFlags) batchMaxBytes() int32 {
	if pf.maxLine+4096 > defaultMaxMessageBytes && pf.maxLine > 1<<20 {
		return int32(pf.maxLine + 4096)
	}
	return defaultMaxMessageBytes
}

// kgoOpts are the producer options for the flags.
func (pf *produceFlags) kgoOpts(conn *connFlags) ([]kgo.Opt, error) {
	opts := []kgo.Opt{
		kgo.AllowAutoTopicCreation(),
		kgo.ProducerLinger(pf.linger),
		kgo.RecordDeliveryTimeout(conn.timeout),
		kgo.MaxBufferedRecords(20000),
		kgo.MaxBufferedBytes(256 << 20),
		kgo.ProducerBatchMaxBytes(pf.batchMaxBytes()),
	}
	switch strings.ToLower(pf.acks) {
	case "all", "-1":
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	case "1", "leader":
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	case "0", "none":
		opts = append(opts, kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite())
	default:
		return nil, usageErr("--acks %q: want all, 1 or 0", pf.acks)
	}
	var codec kgo.CompressionCodec
	switch strings.ToLower(pf.compression) {
	case "none", "":
		codec = kgo.NoCompression()
	case "gzip":
		codec = kgo.GzipCompression()
	case "snappy":
		codec = kgo.SnappyCompression()
	case "lz4":
		codec = kgo.Lz4Compression()
	case "zstd":
		codec = kgo.ZstdCompression()
	default:
		return nil, usageErr("--compression %q: want none, gzip, snappy, lz4 or zstd", pf.compression)
	}
	opts = append(opts, kgo.ProducerBatchCompression(codec))
	if pf.partition >= 0 {
		opts = append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	} else if pf.partition != -1 {
		return nil, usageErr("--partition %d: want a partition number, 0 or more", pf.partition)
	}
	return opts, nil
}

// checkPartition fails unless topic exists and has partition p.
func checkPartition(ctx context.Context, cl *kgo.Client, conn *connFlags, topic string, p int32) error {
	tds, err := existingTopics(ctx, kadm.NewClient(cl), conn, []string{topic})
	if err != nil {
		return err
	}
	if n := int32(len(tds[topic].Partitions)); p >= n {
		return &problem{
			msg:  fmt.Sprintf("topic %q has %d partitions (0 to %d); there is no partition %d", topic, n, n-1, p),
			hint: "pick another --partition, or add partitions with \"strom topic add-partitions\"",
		}
	}
	return nil
}

// unescape interprets \n \r \t \0 and \\ in a separator given on the
// command line, where a real tab or NUL is awkward to type.
func unescape(s string) ([]byte, error) {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			out = append(out, s[i])
			continue
		}
		if i+1 == len(s) {
			return nil, fmt.Errorf(`ends in a lone \; write \\ for a backslash`)
		}
		i++
		switch s[i] {
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case '0':
			out = append(out, 0)
		case '\\':
			out = append(out, '\\')
		default:
			return nil, fmt.Errorf(`unknown escape \%c: known are \n \r \t \0 \\`, s[i])
		}
	}
	return out, nil
}

func indexOf(b, sep []byte) int {
	if len(sep) == 1 {
		return bytes.IndexByte(b, sep[0])
	}
	return bytes.Index(b, sep)
}

func splitAll(b, sep []byte) [][]byte {
	if len(b) == 0 {
		return nil
	}
	return bytes.Split(b, sep)
}
