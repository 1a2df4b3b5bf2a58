package handler

import (
	"fmt"
	"syscall"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/storage/seglog"
)

// Storage errors reach producers as KAFKA_STORAGE_ERROR, which clients
// retry; a full disk used to be UNKNOWN_SERVER_ERROR.
func TestStorageErrorCodes(t *testing.T) {
	for _, err := range []error{
		fmt.Errorf("log /d: append: %w: %w", seglog.ErrStorage, syscall.ENOSPC),
		fmt.Errorf("log /d: roll: %w: %w", seglog.ErrStorage, syscall.EMFILE),
		fmt.Errorf("log /d: %w: sync: %v", seglog.ErrFailed, syscall.EIO),
	} {
		if got := errorCode(err); got != kerr.KafkaStorageError.Code {
			t.Errorf("%v: %v, want KAFKA_STORAGE_ERROR", err, kerr.ErrorForCode(got))
		}
	}
	// Clients older than KIP-112 get the code they know.
	if got := storageErrorFor(kerr.KafkaStorageError.Code, false); got != kerr.NotLeaderForPartition.Code {
		t.Errorf("for an old version: %v", kerr.ErrorForCode(got))
	}
	if got := storageErrorFor(kerr.KafkaStorageError.Code, true); got != kerr.KafkaStorageError.Code {
		t.Errorf("for a new version: %v", kerr.ErrorForCode(got))
	}
	if got := storageErrorFor(kerr.CorruptMessage.Code, false); got != kerr.CorruptMessage.Code {
		t.Errorf("other codes changed: %v", kerr.ErrorForCode(got))
	}
	if !kerr.KafkaStorageError.Retriable {
		t.Fatal("KAFKA_STORAGE_ERROR is not retriable for franz-go")
	}
}

// TestFetchStorageErrorForOldVersions: a fetch below v6 (before KIP-112)
// gets NOT_LEADER_FOR_PARTITION for a storage error, as produce below v4
// and metadata below v5 do; before, fetch passed code 56 to clients that
// do not know it.
func TestFetchStorageErrorForOldVersions(t *testing.T) {
	err := fmt.Errorf("log /d: read: %w: %w", seglog.ErrStorage, syscall.EIO)
	for _, tc := range []struct {
		known bool
		want  int16
	}{{false, kerr.NotLeaderForPartition.Code}, {true, kerr.KafkaStorageError.Code}} {
		f := &fetch{storageKnown: tc.known}
		var sp kmsg.FetchResponseTopicPartition
		f.setError(&sp, err)
		if sp.ErrorCode != tc.want || sp.HighWatermark != -1 {
			t.Errorf("storage known %v: code %d hw %d, want %d", tc.known, sp.ErrorCode, sp.HighWatermark, tc.want)
		}
	}
}
