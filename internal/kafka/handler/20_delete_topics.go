package handler

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/kafka/server"
	"github.com/stromhq/strom/internal/metadata"
)

// DeleteTopics: removes topics, their metadata first, then their data.
//
// Behavior:
//   - An unknown name is UNKNOWN_TOPIC_OR_PARTITION; an unknown id (v6+) is
//     UNKNOWN_TOPIC_ID. An entry with both a name and an id, or neither, is
//     INVALID_REQUEST.
//   - A topic named more than once (by name, by id, or both) is not
//     deleted: each of its entries is INVALID_REQUEST, as Kafka does.
//   - Internal topics cannot be deleted (INVALID_REQUEST).
//   - Every entry is answered, in request order; an entry by id is answered
//     with the topic's name when the id is known.
//   - TimeoutMillis is ignored: deletion is synchronous.
//
// Version notes: v1 throttle; v2-3 same layout; v4+ flexible; v5
// ErrorMessage; v6 topics by name or id (Topics replaces TopicNames).
func init() { register(20, 0, 6, handleDeleteTopics) }

func handleDeleteTopics(h *Handler, _ context.Context, req *server.Request) (server.Reply, error) {
	r := req.Msg.(*kmsg.DeleteTopicsRequest)
	resp := r.ResponseKind().(*kmsg.DeleteTopicsResponse)

	type entry struct {
		st   kmsg.DeleteTopicsResponseTopic
		name string
		ok   bool // name is resolved; false once answered with an error
	}
	var entries []entry
	if req.Version < 6 {
		for _, name := range r.TopicNames {
			e := entry{st: kmsg.NewDeleteTopicsResponseTopic(), name: name, ok: true}
			e.st.Topic = kmsg.StringPtr(name)
			entries = append(entries, e)
		}
	} else {
		for _, rt := range r.Topics {
			e := entry{st: kmsg.NewDeleteTopicsResponseTopic()}
			e.st.Topic, e.st.TopicID = rt.Topic, rt.TopicID
			switch {
			case rt.Topic != nil && rt.TopicID != [16]byte{}:
				setDeleteError(&e.st, adminFail(kerr.InvalidRequest, "give a topic name or a topic id, not both"))
			case rt.Topic != nil:
				e.name, e.ok = *rt.Topic, true
			case rt.TopicID == [16]byte{}:
				setDeleteError(&e.st, adminFail(kerr.InvalidRequest, "neither a topic name nor a topic id"))
			default:
				t, ok := h.c.TopicByID(metadata.TopicID(rt.TopicID))
				if !ok {
					setDeleteError(&e.st, adminFail(kerr.UnknownTopicID, "no topic has id %x", rt.TopicID))
					break
				}
				e.name, e.ok = t.Name, true
				e.st.Topic = kmsg.StringPtr(t.Name)
			}
			entries = append(entries, e)
		}
	}

	times := map[string]int{}
	for _, e := range entries {
		if e.ok {
			times[e.name]++
		}
	}
	for i := range entries {
		e := &entries[i]
		if !e.ok {
			continue
		}
		if times[e.name] > 1 {
			setDeleteError(&e.st, adminFail(kerr.InvalidRequest, "topic %q is named %d times in the request", e.name, times[e.name]))
			continue
		}
		t, ok := h.c.Topic(e.name)
		if !ok {
			setDeleteError(&e.st, fmt.Errorf("%w: topic %q does not exist", metadata.ErrUnknownTopic, e.name))
			continue
		}
		if req.Version >= 6 {
			e.st.TopicID = t.ID
		}
		if t.Internal {
			setDeleteError(&e.st, adminFail(kerr.InvalidRequest, "topic %q is internal and cannot be deleted", e.name))
			continue
		}
		if err := h.c.DeleteTopic(e.name); err != nil {
			setDeleteError(&e.st, err)
		}
	}
	for _, e := range entries {
		resp.Topics = append(resp.Topics, e.st)
	}
	return now(resp)
}

func setDeleteError(st *kmsg.DeleteTopicsResponseTopic, err error) {
	st.ErrorCode, st.ErrorMessage = adminCode(err), errorMessage(err)
}
