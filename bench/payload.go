package bench

import (
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Payload is what a produce workload's record values hold. Every record
// gets a value of its own from a pool generated once per run (issue 24: one
// value reused for every record made each value incompressible alone but a
// batch of them ~18x compressible, hiding validation cost with compression
// off and exaggerating it with compression on).
type Payload int

const (
	// RandomPayload is pseudo-random bytes: nothing compresses them, alone
	// or within a batch, since no value repeats within poolValues records.
	RandomPayload Payload = iota
	// JSONPayload is a device's sensor report, readings as `strom demo`
	// writes them (timestamp, sensor, value) with a unit and a status,
	// repeated until the value reaches the record size: text that
	// compresses as real telemetry does (a batch of 256 about 7x with
	// snappy: TestValuePools), different in every record.
	JSONPayload
)

func (p Payload) String() string {
	if p == JSONPayload {
		return "JSON sensor reports"
	}
	return "pseudo-random bytes"
}

// poolValues is the number of distinct values in a pool: more than the
// records of a 1 MiB batch of 100-byte values, so no batch holds one twice.
const poolValues = 16384

type poolKey struct {
	payload Payload
	size    int
}

var valuePools sync.Map // poolKey -> *valuePool

// valuePool is poolValues distinct values of one payload and size, shared
// read-only by every producer of a run (kgo never modifies a value).
type valuePool struct {
	once   sync.Once
	values [][]byte
}

// values returns the pool of payload p at size n, generating it on first
// use.
func values(p Payload, n int) [][]byte {
	v, _ := valuePools.LoadOrStore(poolKey{p, n}, &valuePool{})
	vp := v.(*valuePool)
	vp.once.Do(func() {
		vp.values = make([][]byte, poolValues)
		switch p {
		case JSONPayload:
			for i := range vp.values {
				vp.values[i] = sensorReport(uint64(i), n)
			}
		default:
			all := pseudoRandom(poolValues*n, 0x9e3779b97f4a7c15)
			for i := range vp.values {
				vp.values[i] = all[i*n : (i+1)*n : (i+1)*n]
			}
		}
	})
	return vp.values
}

// sensorReport is a JSON value of about n bytes (at least n, the last
// reading completing it) for report i: the readings of one device, each
// like `strom demo`'s, with values that drift as a sensor's do.
func sensorReport(i uint64, n int) []byte {
	rng := i*0x9e3779b97f4a7c15 + 1
	next := func() uint64 { // xorshift64
		rng ^= rng << 13
		rng ^= rng >> 7
		rng ^= rng << 17
		return rng
	}
	base := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Second)
	b := make([]byte, 0, n+160)
	b = append(b, `{"device":"dev-`...)
	b = strconv.AppendUint(b, i%500, 10)
	b = append(b, `","site":"plant-`...)
	b = strconv.AppendUint(b, i%7, 10)
	b = append(b, `","firmware":"2.4.1","readings":[`...)
	units := []string{"C", "%RH", "hPa", "lx"}
	for k := 0; len(b) < n-2; k++ {
		if k > 0 {
			b = append(b, ',')
		}
		s := next() % 16
		b = append(b, `{"timestamp":"`...)
		b = base.Add(time.Duration(k)*250*time.Millisecond).AppendFormat(b, "2006-01-02T15:04:05.000Z")
		b = append(b, `","sensor":"s`...)
		b = strconv.AppendUint(b, s, 10)
		b = append(b, `","value":`...)
		b = strconv.AppendFloat(b, 15+float64(next()%2000)/100, 'f', 2, 64)
		b = append(b, `,"unit":"`...)
		b = append(b, units[s%4]...)
		b = append(b, `","status":"ok"}`...)
	}
	return append(b, "]}"...)
}

// Codec is the producer's batch compression, as kgo names it.
type Codec string

const (
	NoCodec Codec = "none"
	Snappy  Codec = "snappy" // franz-go's default
	LZ4     Codec = "lz4"
	Zstd    Codec = "zstd"
)

func (c Codec) kgo() (kgo.CompressionCodec, error) {
	switch c {
	case NoCodec, "":
		return kgo.NoCompression(), nil
	case Snappy:
		return kgo.SnappyCompression(), nil
	case LZ4:
		return kgo.Lz4Compression(), nil
	case Zstd:
		return kgo.ZstdCompression(), nil
	}
	return kgo.CompressionCodec{}, fmt.Errorf("no codec %q", string(c))
}
