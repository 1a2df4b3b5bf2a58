package handler

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/stromhq/strom/internal/metadata"
)

// What several handlers share to find the topics a request names.

// maxDecompressedBytes caps the decompressed size of one message set wrapper
// or batch converted by the handlers (the log's own default cap).
const maxDecompressedBytes = 64 << 20

// requestTopic finds a topic named in a request, by id for versions that
// use ids: the error is UNKNOWN_TOPIC_ID or UNKNOWN_TOPIC_OR_PARTITION.
// The topic is shared with the metadata (a view, not a copy: every produce
// and fetch asks): read only.
func (h *Handler) requestTopic(byID bool, name string, id [16]byte) (metadata.Topic, error) {
	if byID {
		t, ok := h.c.TopicViewByID(metadata.TopicID(id))
		if !ok {
			return t, fmt.Errorf("topic id %s: %w", metadata.TopicID(id), kerr.UnknownTopicID)
		}
		return t, nil
	}
	t, ok := h.c.TopicView(name)
	if !ok {
		return t, fmt.Errorf("topic %q: %w", name, kerr.UnknownTopicOrPartition)
	}
	return t, nil
}
