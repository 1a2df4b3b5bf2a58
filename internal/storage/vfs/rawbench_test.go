package vfs

import (
	"os"
	"testing"
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
