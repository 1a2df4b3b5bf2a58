package handler

import (
	"fmt"
	"syscall"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

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
