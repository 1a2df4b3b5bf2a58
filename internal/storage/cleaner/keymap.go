package cleaner

import (
	"encoding/binary"
	"hash/maphash"
)

// entrySize is one slot of the key map: a 128-bit key hash and an offset.
const entrySize = 24

// loadFactor is the share of slots filled before the map reports itself
// full (Kafka's log.cleaner.io.buffer.load.factor): linear probing stays
// short.
const loadFactor = 0.9

// keyMap maps keys, by a 128-bit hash, to the last offset seen for them. Its
// memory is one slice, sized for a pass from what the pass may need and
// never past the dedupe buffer: put fails once the map holds its capacity
// and the pass stops there. Two keys with the same 128-bit hash are taken as one (as Kafka's
// MD5-based map does); two maphash seeds make that as unlikely as a
// random 128-bit collision. Not safe for concurrent use: each cleaner
// worker owns one.
type keyMap struct {
	slots    []byte
	n        int // slots
	maxSlots int // the buffer's
	used     int
	capacity int // used may not exceed it
	seed1    maphash.Seed
	seed2    maphash.Seed
}

// newKeyMap makes a map of at most bufferBytes of memory (at least two
// slots). The memory is taken by reset, as a pass needs it.
func newKeyMap(bufferBytes int64) *keyMap {
	return &keyMap{maxSlots: max(int(bufferBytes/entrySize), 2), seed1: maphash.MakeSeed(), seed2: maphash.MakeSeed()}
}

// reset empties the map for a pass that may map up to keys keys: the map
// grows to fit them (never past the buffer; it never shrinks), so a small
// log does not cost the whole dedupe buffer. An estimate too low only
// makes the pass partial.
func (m *keyMap) reset(keys int) {
	want := min(max(int(float64(keys)/loadFactor)+1, minSlots), m.maxSlots)
	if want > m.n {
		m.slots, m.n = make([]byte, want*entrySize), want
	} else {
		clear(m.slots)
	}
	m.capacity = max(int(float64(m.n)*loadFactor), 1)
	m.used = 0
}

// minSlots is the smallest map a pass gets (24 KiB).
const minSlots = 1024

func (m *keyMap) hash(key []byte) (uint64, uint64) {
	h1 := maphash.Bytes(m.seed1, key)
	h2 := maphash.Bytes(m.seed2, key)
	if h1 == 0 && h2 == 0 {
		h2 = 1 // all-zero marks an empty slot
	}
	return h1, h2
}

// slot returns the position of key's slot, or of the empty slot it would
// take, and whether key is there.
func (m *keyMap) slot(h1, h2 uint64) (int, bool) {
	i := int(h1 % uint64(m.n))
	for {
		e := m.slots[i*entrySize:]
		a, b := binary.LittleEndian.Uint64(e), binary.LittleEndian.Uint64(e[8:])
		if a == h1 && b == h2 {
			return i, true
		}
		if a == 0 && b == 0 {
			return i, false
		}
		if i++; i == m.n {
			i = 0
		}
	}
}

// put records offset as key's latest. It returns false, changing nothing,
// when key is new and the map is full.
func (m *keyMap) put(key []byte, offset int64) bool {
	h1, h2 := m.hash(key)
	i, found := m.slot(h1, h2)
	if !found {
		if m.used >= m.capacity {
			return false
		}
		m.used++
	}
	e := m.slots[i*entrySize:]
	binary.LittleEndian.PutUint64(e, h1)
	binary.LittleEndian.PutUint64(e[8:], h2)
	binary.LittleEndian.PutUint64(e[16:], uint64(offset))
	return true
}

// get returns key's latest offset, or -1.
func (m *keyMap) get(key []byte) int64 {
	i, found := m.slot(m.hash(key))
	if !found {
		return -1
	}
	return int64(binary.LittleEndian.Uint64(m.slots[i*entrySize+16:]))
}

// full reports whether a new key would not fit.
func (m *keyMap) full() bool { return m.used >= m.capacity }
