package raftlog

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
)

// modelEntry is what the property test expects of one entry.
type modelEntry struct {
	e       *raftpb.Entry
	offset  int64 // the log offset of its batch
	records int64 // records in its batch
}

// model is the expected raft log: entries from first, the term before.
type model struct {
	first    uint64
	prevTerm uint64
	ents     []modelEntry
	end      int64 // the log end offset
}

func (m *model) last() uint64 { return m.first + uint64(len(m.ents)) - 1 }

// randomEntries makes n entries from index idx with term: client batches of
// random record counts and sizes, leader entries and conf changes.
func randomEntries(t *testing.T, rng *rand.Rand, idx uint64, n int, term uint64) ([]*raftpb.Entry, []int64) {
	var ents []*raftpb.Entry
	var recs []int64
	for i := 0; i < n; i++ {
		switch r := rng.IntN(10); {
		case r == 0:
			ents, recs = append(ents, normal(idx, term, nil)), append(recs, 1)
		case r == 1:
			ents, recs = append(ents, typed(idx, term, raftpb.EntryConfChange, []byte(fmt.Sprintf("c%d", idx)))), append(recs, 1)
		case r == 2:
			ents, recs = append(ents, typed(idx, term, raftpb.EntryConfChangeV2, nil)), append(recs, 1)
		default:
			k := 1 + rng.IntN(5)
			ents = append(ents, normal(idx, term, clientBatch(t, fmt.Sprintf("i%d-t%d", idx, term), k, 1+rng.IntN(200))))
			recs = append(recs, int64(k))
		}
		idx++
	}
	return ents, recs
}

// apply records in m the append of ents at their index (cutting the tail).
func (m *model) apply(ents []*raftpb.Entry, recs []int64) {
	k := int(ents[0].GetIndex() - m.first)
	if k < len(m.ents) {
		m.end = m.ents[k].offset
		m.ents = m.ents[:k]
	}
	for i, e := range ents {
		m.ents = append(m.ents, modelEntry{e: e, offset: m.end, records: recs[i]})
		m.end += recs[i]
	}
}

// checkTranslator checks s against m: index→offset→index is the identity
// for every offset of every batch, offsets and terms match the model.
func checkTranslator(t *testing.T, s *Storage, m *model, step string) {
	t.Helper()
	if fi, _ := s.FirstIndex(); fi != m.first {
		t.Fatalf("%s: FirstIndex %d, model %d", step, fi, m.first)
	}
	if li, _ := s.LastIndex(); li != m.last() {
		t.Fatalf("%s: LastIndex %d, model %d", step, li, m.last())
	}
	if tm, err := s.Term(m.first - 1); err != nil || tm != m.prevTerm {
		t.Fatalf("%s: Term(first-1) %d %v, model %d", step, tm, err, m.prevTerm)
	}
	for k, me := range m.ents {
		idx := m.first + uint64(k)
		off, ok := s.OffsetOf(idx)
		if !ok || off != me.offset {
			t.Fatalf("%s: OffsetOf(%d) = %d %v, model %d", step, idx, off, ok, me.offset)
		}
		for o := off; o < off+me.records; o++ {
			if back, ok := s.IndexOf(o); !ok || back != idx {
				t.Fatalf("%s: IndexOf(%d) = %d %v, want %d", step, o, back, ok, idx)
			}
		}
		if tm, err := s.Term(idx); err != nil || tm != me.e.GetTerm() {
			t.Fatalf("%s: Term(%d) = %d %v, model %d", step, idx, tm, err, me.e.GetTerm())
		}
	}
	if end, ok := s.OffsetOf(m.last() + 1); !ok || end != m.end {
		t.Fatalf("%s: OffsetOf(last+1) = %d %v, model end %d", step, end, ok, m.end)
	}
	if _, ok := s.IndexOf(m.end); ok {
		t.Fatalf("%s: IndexOf(end %d) found an entry", step, m.end)
	}
	if len(m.ents) > 0 {
		got, err := s.Entries(m.first, m.last()+1, 1<<40)
		if err != nil || len(got) != len(m.ents) {
			t.Fatalf("%s: Entries: %d, %v; model %d", step, len(got), err, len(m.ents))
		}
		for k, g := range got {
			if err := sameEntry(t, g, m.ents[k].e); err != nil {
				t.Fatalf("%s: %v", step, err)
			}
		}
	}
}

func TestTranslatorProperty(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 18))
			s, l, fs := newStorage(t)
			m := &model{first: 1}
			term := uint64(1)
			for step := 0; step < 60; step++ {
				var what string
				switch op := rng.IntN(10); {
				case op < 5 || len(m.ents) == 0: // append at the end
					ents, recs := randomEntries(t, rng, m.last()+1, 1+rng.IntN(6), term)
					if err := s.Append(ents); err != nil {
						t.Fatal(err)
					}
					m.apply(ents, recs)
					what = fmt.Sprintf("append %d at %d", len(ents), ents[0].GetIndex())
				case op < 7: // a new term replaces a tail
					term++
					at := m.first + uint64(rng.IntN(len(m.ents)))
					ents, recs := randomEntries(t, rng, at, 1+rng.IntN(4), term)
					if err := s.Append(ents); err != nil {
						t.Fatal(err)
					}
					m.apply(ents, recs)
					what = fmt.Sprintf("replace from %d", at)
				case op < 8: // retention moves the start
					k := rng.IntN(len(m.ents) + 1)
					at := m.first + uint64(k)
					off, _ := s.OffsetOf(at)
					if err := s.AdvanceStart(off); err != nil {
						t.Fatal(err)
					}
					if k > 0 {
						m.prevTerm = m.ents[k-1].e.GetTerm()
						m.ents = m.ents[k:]
						m.first = at
					}
					what = fmt.Sprintf("start to %d", at)
				default: // reopen: the translator is rebuilt from headers
					l.Close()
					s, l = openStorage(t, fs)
					t.Cleanup(func() { l.Close() })
					what = "reopen"
				}
				checkTranslator(t, s, m, fmt.Sprintf("step %d (%s)", step, what))
			}
		})
	}
}
