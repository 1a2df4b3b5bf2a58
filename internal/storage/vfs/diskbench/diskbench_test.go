package diskbench

import (
	"math"
	"os"
	"testing"
	"time"
)

func TestMeasureHelpers(t *testing.T) {
	dir := t.TempDir()
	bps, err := MeasureSequentialWrite(dir, 1<<20, 256<<10)
	if err != nil || bps <= 0 {
		t.Fatalf("MeasureSequentialWrite = %v, %v", bps, err)
	}
	perSec, avg, err := MeasureAppendSync(dir, 3, 4<<10)
	if err != nil || perSec <= 0 || avg <= 0 {
		t.Fatalf("MeasureAppendSync = %v, %v, %v", perSec, avg, err)
	}
	// The helpers clean up after themselves.
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
		t.Fatalf("left behind %v, %v", entries, err)
	}
	if _, err := MeasureSequentialWrite(dir, 0, 1); err == nil {
		t.Fatal("MeasureSequentialWrite(total 0) succeeded")
	}
	if _, _, err := MeasureAppendSync(dir, 1, 0); err == nil {
		t.Fatal("MeasureAppendSync(size 0) succeeded")
	}
	if _, err := MeasureSequentialWrite(dir+"/missing", 1, 1); err == nil {
		t.Fatal("MeasureSequentialWrite(missing dir) succeeded")
	}
}

func TestMeasureAppendSyncs(t *testing.T) {
	s, err := MeasureAppendSyncs(t.TempDir(), 5, 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Times) != 5 || s.Size != 64<<10 {
		t.Fatalf("%d times of %d bytes, want 5 of 64 KiB", len(s.Times), s.Size)
	}
	var sum time.Duration
	for i, d := range s.Times {
		if d <= 0 || (i > 0 && d < s.Times[i-1]) {
			t.Fatalf("times not positive and ascending: %v", s.Times)
		}
		sum += d
	}
	// The appends follow each other: their times add up to the whole.
	if sum != s.Elapsed {
		t.Errorf("times add up to %v, elapsed %v", sum, s.Elapsed)
	}
	if got, want := s.BytesPerSec(), 5*float64(64<<10)/s.Elapsed.Seconds(); math.Abs(got-want) > want*1e-9 {
		t.Errorf("BytesPerSec = %v, want %v", got, want)
	}
	if _, err := MeasureAppendSyncs(t.TempDir(), 0, 1); err == nil {
		t.Error("MeasureAppendSyncs(n 0) succeeded")
	}
}

func TestAppendSyncsPercentile(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		var out []time.Duration
		for _, n := range ns {
			out = append(out, time.Duration(n)*time.Millisecond)
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	for _, tc := range []struct {
		times []time.Duration
		p     float64
		want  time.Duration
	}{
		{ms(7), 0.5, 7 * time.Millisecond},
		{ms(7), 0.99, 7 * time.Millisecond},
		{ms(1, 2, 3, 4), 0.5, 2 * time.Millisecond},
		{ms(1, 2, 3, 4), 0.99, 4 * time.Millisecond},
		{ms(1, 2, 3, 4), 0, 1 * time.Millisecond},
		{ms(hundred...), 0.5, 50 * time.Millisecond},
		{ms(hundred...), 0.99, 99 * time.Millisecond},
		{ms(hundred...), 1, 100 * time.Millisecond},
	} {
		s := AppendSyncs{Times: tc.times}
		if got := s.Percentile(tc.p); got != tc.want {
			t.Errorf("Percentile(%v) of %d times = %v, want %v", tc.p, len(tc.times), got, tc.want)
		}
	}
}
