package cli

import (
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestProduceConsumeLines(t *testing.T) {
	onEach(t, func(t *testing.T, c *cluster) {
		c.ok(t, nil, "topic", "create", "lines", "-p", "1")
		in := "k1:v1\nk2:v2\n:empty-key\nnokey\n\n"
		r := c.run(t, strings.NewReader(in), "produce", "lines", "-K", ":", "-H", "src=cli", "-v")
		same(t, "delivery report", r.stdout, "delivered to lines [0] at offset 0\ndelivered to lines [0] at offset 1\ndelivered to lines [0] at offset 2\n"+
			"delivered to lines [0] at offset 3\ndelivered to lines [0] at offset 4\n")
		same(t, "produce summary", r.stderr, "strom: produced 5 records to lines\n")

		all := "0|0|k1|v1|src=cli|2|2\n0|1|k2|v2|src=cli|2|2\n0|2||empty-key|src=cli|0|9\n0|3||nokey|src=cli|-1|5\n0|4|||src=cli|-1|0\n"
		f := `%p|%o|%k|%v|%h|%K|%S\n`
		same(t, "from beginning", c.ok(t, nil, "consume", "lines", "--from-beginning", "-e", "-f", f), all)
		same(t, "offset N", c.ok(t, nil, "consume", "lines", "-o", "3", "-e", "-f", f), "0|3||nokey|src=cli|-1|5\n0|4|||src=cli|-1|0\n")
		same(t, "offset -N", c.ok(t, nil, "consume", "lines", "-o", "-2", "-e", "-f", f), "0|3||nokey|src=cli|-1|5\n0|4|||src=cli|-1|0\n")
		same(t, "offset past the end", c.ok(t, nil, "consume", "lines", "-o", "99", "-e"), "")
		same(t, "latest with --exit", c.ok(t, nil, "consume", "lines", "-e"), "")
		same(t, "count", c.ok(t, nil, "consume", "lines", "--offset", "earliest", "-n", "2"), "v1\nv2\n")
		same(t, "partition and offset", c.ok(t, nil, "consume", "lines", "--partition", "0", "--offset", "1", "-n", "1", "-f", "%o %s\n"), "1 v2\n")
		same(t, "Kafka's spellings", c.ok(t, nil, "consume", "--bootstrap-server", c.addr, "--topic", "lines", "--from-beginning", "--max-messages", "2"), "v1\nv2\n")
		same(t, "print.key", c.ok(t, nil, "consume", "lines", "--from-beginning", "-e", "--property", "print.key=true", "--property", "key.separator=="),
			// A null key is "null", as Kafka's console consumer prints it; an empty one is empty.
			"k1=v1\nk2=v2\n=empty-key\nnull=nokey\nnull=\n")
		same(t, "format escapes", c.ok(t, nil, "consume", "lines", "--from-beginning", "-n", "1", "-f", `%%\t%t\\%v\r\n`), "%\tlines\\v1\r\n")

		// Headers parsed from the line, then the key.
		r = c.run(t, strings.NewReader("a=1,b=2\tkey:value\nno headers here\n"), "produce", "lines", "--parse-headers", "-K:")
		same(t, "produce --parse-headers", r.stdout+r.stderr, "")
		same(t, "parsed headers", c.ok(t, nil, "consume", "lines", "-o", "5", "-e", "-f", f), "0|5|key|value|a=1,b=2|3|5\n0|6||no headers here||-1|15\n")

		// Kafka's console producer properties.
		r = c.run(t, strings.NewReader("x:1,y:2\tk\tv\n"), "produce", "--topic", "lines", "--broker-list", c.addr,
			"--property", "parse.key=true", "--property", "parse.headers=true")
		same(t, "produce --property", r.stdout+r.stderr, "")
		same(t, "property-parsed record", c.ok(t, nil, "consume", "lines", "-o", "7", "-e", "-f", f), "0|7|k|v|x=1,y=2|1|1\n")
	})
}

func TestConsumeJSONAndTimestamps(t *testing.T) {
	onEach(t, func(t *testing.T, c *cluster) {
		c.ok(t, nil, "topic", "create", "j", "-p", "1")
		c.seed(t,
			&kgo.Record{Topic: "j", Key: []byte("k"), Value: []byte("v"), Timestamp: time.UnixMilli(1000), Headers: []kgo.RecordHeader{{Key: "h", Value: []byte("x")}}},
			&kgo.Record{Topic: "j", Value: []byte{0xff, 0x00, 0x01}, Timestamp: time.UnixMilli(2000)},
			&kgo.Record{Topic: "j", Key: []byte("quote\"\n\x01"), Timestamp: time.UnixMilli(3000)},
			&kgo.Record{Topic: "j", Key: []byte{0x80}, Value: []byte("héllo ✓ \u2028"), Timestamp: time.UnixMilli(4000),
				Headers: []kgo.RecordHeader{{Key: "bin", Value: []byte{0, 1, 0xfe}}, {Key: "nul"}, {Key: "bin", Value: []byte("dup")}}},
		)
		want := `{"topic":"j","partition":0,"offset":0,"timestamp":1000,"key":"k","key_encoding":"text","value":"v","value_encoding":"text","headers":[{"key":"h","value":"x"}],"size":2}
{"topic":"j","partition":0,"offset":1,"timestamp":2000,"key":null,"value":"/wAB","value_encoding":"base64","headers":[],"size":3}
{"topic":"j","partition":0,"offset":2,"timestamp":3000,"key":"quote\"\n\u0001","key_encoding":"text","value":null,"headers":[],"size":8}
{"topic":"j","partition":0,"offset":3,"timestamp":4000,"key":"gA==","key_encoding":"base64","value":"héllo ✓ \u2028","value_encoding":"text","headers":[{"key":"bin","value_base64":"AAH+"},{"key":"nul","value":null},{"key":"bin","value":"dup"}],"size":15}
`
		same(t, "json", c.ok(t, nil, "consume", "j", "--from-beginning", "--exit", "--format", "json"), want)
		same(t, "timestamps", c.ok(t, nil, "consume", "j", "--from-beginning", "-e", "-f", `%o %T %K %S\n`), "0 1000 1 1\n1 2000 -1 3\n2 3000 8 -1\n3 4000 1 14\n")
		same(t, "--timestamp", c.ok(t, nil, "consume", "j", "--timestamp", "2500", "-e", "-f", `%o\n`), "2\n3\n")
		same(t, "--timestamp RFC 3339", c.ok(t, nil, "consume", "j", "--timestamp", "1970-01-01T00:00:02Z", "-e", "-f", `%o\n`), "1\n2\n3\n")
		same(t, "--timestamp after the last record", c.ok(t, nil, "consume", "j", "--timestamp", "5000", "-e"), "")
	})
}

func TestProducePartitionsAndCodecs(t *testing.T) {
	onEach(t, func(t *testing.T, c *cluster) {
		c.ok(t, nil, "topic", "create", "p3", "-p", "3")
		c.ok(t, strings.NewReader("a\nb\n"), "produce", "p3", "--partition", "1")
		c.ok(t, strings.NewReader("c\n"), "produce", "p3", "-p", "2", "--acks", "1")
		c.ok(t, strings.NewReader("d\n"), "produce", "p3", "-p", "0", "--acks", "0")
		for _, codec := range []string{"gzip", "snappy", "lz4", "zstd", "none"} {
			c.ok(t, strings.NewReader(codec+"-1\n"+codec+"-2\n"), "produce", "p3", "-p", "0", "--compression", codec)
		}
		same(t, "partition 0", c.ok(t, nil, "consume", "p3", "--partition", "0", "--from-beginning", "-e"), "d\ngzip-1\ngzip-2\nsnappy-1\nsnappy-2\nlz4-1\nlz4-2\nzstd-1\nzstd-2\nnone-1\nnone-2\n")
		out := c.ok(t, nil, "consume", "p3", "--partition", "1,2", "--from-beginning", "-e", "-f", `%p:%o:%v\n`)
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		sort.Strings(lines)
		same(t, "partitions 1 and 2", strings.Join(lines, "\n"), "1:0:a\n1:1:b\n2:0:c")
		c.ok(t, nil, "topic", "create", "other", "-p", "1")
		c.ok(t, strings.NewReader("o\n"), "produce", "other")
		same(t, "two topics", sortedLines(c.ok(t, nil, "consume", "p3", "other", "--offset", "-1", "-e", "-f", `%t:%p:%v\n`)),
			"other:0:o\np3:0:none-2\np3:1:b\np3:2:c\n")

		c.fails(t, strings.NewReader("x\n"), "strom: topic \"p3\" has 3 partitions (0 to 2); there is no partition 5 — pick another --partition, or add partitions with \"strom topic add-partitions\"\n",
			"produce", "p3", "--partition", "5")
		c.fails(t, nil, "strom: topic \"p3\" has 3 partitions (0 to 2); there is no partition 7 — pick another --partition\n",
			"consume", "p3", "--partition", "7")
		c.fails(t, strings.NewReader("x\n"), "strom: --compression \"brotli\": want none, gzip, snappy, lz4 or zstd\n", "produce", "p3", "--compression", "brotli")
		c.fails(t, strings.NewReader("x\n"), "strom: --acks \"2\": want all, 1 or 0\n", "produce", "p3", "--acks", "2")
		c.fails(t, strings.NewReader("x\n"), "strom: produce writes to one topic; got 2 (p3, other)\n", "produce", "p3", "other")

		// A line over the limit stops the input; what came before it is delivered.
		c.ok(t, nil, "topic", "create", "long", "-p", "1")
		c.fails(t, strings.NewReader("short\nthis line is too long\nnever\n"), "strom: line 2 is longer than 10 bytes — raise --max-line-bytes\n",
			"produce", "long", "--max-line-bytes", "10")
		same(t, "before the long line", c.ok(t, nil, "consume", "long", "--from-beginning", "-e"), "short\n")
	})
}

func TestConsumeFlagErrors(t *testing.T) {
	c := startKfake(t)
	c.ok(t, nil, "topic", "create", "t", "-p", "1")
	c.fails(t, nil, "strom: --format: unknown token %x at position 1: known tokens are %t %p %o %k %v %s %h %T %K %S %V %%\n", "consume", "t", "-f", "%x")
	c.fails(t, nil, "strom: give only one of --from-beginning, --offset and --timestamp\n", "consume", "t", "--from-beginning", "--offset", "3")
	c.fails(t, nil, "strom: --offset \"first\": want earliest, latest, an offset N, or -N for N before the end\n", "consume", "t", "--offset", "first")
	c.fails(t, nil, "strom: --timestamp \"yesterday\": want milliseconds since the epoch, a time like 2024-05-01T12:00:00Z or 2024-05-01, or a duration ago like -15m\n",
		"consume", "t", "--timestamp", "yesterday")
	c.fails(t, nil, "strom: --partition cannot be used with --group: the group assigns the partitions\n", "consume", "t", "-g", "g", "-p", "0")
	c.fails(t, nil, "strom: --partition \"x\": want whole numbers separated by commas — see \"strom consume --help\"\n", "consume", "t", "-p", "x")
	c.fails(t, nil, "strom: no topic given — name one, e.g. \"strom consume orders --from-beginning\"\n", "consume")
	c.fails(t, nil, "strom: topic \"nope\" does not exist — create it with \"strom topic create nope\", or see \"strom topic list\"\n", "consume", "nope")
	c.fails(t, nil, "strom: --property \"print.everything=true\": want one of print.key, print.value, print.timestamp, print.partition, print.offset, print.headers (=true or false) or key.separator=...\n",
		"consume", "t", "--property", "print.everything=true")
}

func TestProduceMissingTopic(t *testing.T) {
	t.Run("kfake refuses", func(t *testing.T) {
		t.Parallel()
		c := startKfake(t) // no auto-creation
		c.fails(t, strings.NewReader("a\nb\n"),
			"strom: 2 of 2 records failed: topic \"missing\" does not exist — create it with \"strom topic create missing\", or see \"strom topic list\"\n",
			"produce", "missing")
	})
	t.Run("strom creates", func(t *testing.T) {
		t.Parallel()
		c := startStrom(t) // auto.create.topics.enable is on by default
		c.ok(t, strings.NewReader("a\nb\n"), "produce", "fresh")
		same(t, "auto-created", c.ok(t, nil, "consume", "fresh", "--from-beginning", "-e"), "a\nb\n")
	})
}
