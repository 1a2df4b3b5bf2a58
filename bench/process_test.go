package bench

import (
	"os"
	"testing"
	"time"
)

// The /proc readers see this process: some CPU time once it has burnt
// some, and a resident set no larger than its peak.
func TestProcReadings(t *testing.T) {
	for start := time.Now(); time.Since(start) < 50*time.Millisecond; {
	}
	cpu, err := procCPU(os.Getpid())
	if err != nil || cpu <= 0 {
		t.Errorf("procCPU = %v, %v", cpu, err)
	}
	rss, peak, err := procRSS(os.Getpid())
	if err != nil || rss <= 0 || peak < rss {
		t.Errorf("procRSS = %d, %d, %v", rss, peak, err)
	}
	if _, err := procCPU(-1); err == nil {
		t.Error("procCPU(-1) succeeded")
	}
}
