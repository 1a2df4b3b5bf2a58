package cleanermetrics

import (
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	page := `# HELP strom_partition_cleaner_dirty_ratio Share...
# TYPE strom_partition_cleaner_dirty_ratio gauge
strom_partition_cleaner_dirty_ratio{partition="1",topic="scores"} 0.25
strom_partition_cleaner_dirty_ratio{partition="0",topic="scores"} 0.5
strom_partition_cleaner_dirty_bytes{partition="0",topic="scores"} 4096
strom_partition_cleaner_last_clean_timestamp_seconds{partition="0",topic="scores"} 1.7e+09
strom_partition_cleaner_last_clean_timestamp_seconds{partition="1",topic="scores"} 0
strom_partition_cleaner_last_clean_duration_seconds{partition="0",topic="scores"} 0.012
strom_partition_cleaner_dirty_ratio{partition="0",topic="a.b"} 1
strom_log_cleaner_passes_total 3
go_goroutines 12
`
	got, err := Parse(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	want := []Partition{
		{Topic: "a.b", Partition: 0, DirtyRatio: 1},
		{Topic: "scores", Partition: 0, DirtyRatio: 0.5, DirtyBytes: 4096, LastClean: time.Unix(1700000000, 0).UTC(), LastDuration: 12 * time.Millisecond},
		{Topic: "scores", Partition: 1, DirtyRatio: 0.25},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("row %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	if _, err := Parse(strings.NewReader(`strom_partition_cleaner_dirty_ratio{partition="x",topic="t"} 1` + "\n")); err == nil {
		t.Error("a bad partition label parsed")
	}
}
