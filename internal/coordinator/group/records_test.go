package group

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"time"
)

func sampleGroup() groupRecord {
	return groupRecord{
		ProtocolType: "consumer", Generation: 7, Protocol: "cooperative-sticky", Leader: "m-1", StateTime: 1700000000000,
		Members: []memberRecord{
			{MemberID: "m-1", InstanceID: "i-1", ClientID: "c", ClientHost: "/127.0.0.1", RebalanceTimeout: time.Minute, SessionTimeout: 45 * time.Second, Metadata: []byte{0, 1, 2}, Assignment: []byte("a")},
			{MemberID: "m-2", ClientID: "c2", ClientHost: "/::1", RebalanceTimeout: time.Second, SessionTimeout: 6 * time.Second, Metadata: []byte{}, Assignment: []byte{}},
		},
	}
}

func sampleConsumerGroup() consumerRecord {
	return consumerRecord{
		Epoch: 9, TargetEpoch: 9, Assignor: "uniform", StateTime: 1700000000001,
		Members: []consumerMemberRecord{
			{MemberID: "m1", InstanceID: "i", RackID: "r", ClientID: "c", ClientHost: "/::1", Epoch: 9, PrevEpoch: 7,
				RebalanceTimeout: time.Minute, Assignor: "range", Regex: "t.*", Topics: []string{"a", "b"},
				Assigned: []TopicPartition{{"a", 0}, {"b", 3}}, Revoking: []TopicPartition{{"a", 1}}},
			{MemberID: "m2", Epoch: -2, PrevEpoch: 8, Topics: []string{}, Assigned: []TopicPartition{}, Revoking: []TopicPartition{}},
		},
	}
}

func TestRecordsRoundTrip(t *testing.T) {
	k, err := decodeKey(offsetKey("grp", "topic", 42))
	if err != nil || k != (decodedKey{kind: keyOffset, group: "grp", topic: "topic", partition: 42}) {
		t.Fatalf("offset key: %+v %v", k, err)
	}
	k, err = decodeKey(groupKey("grp"))
	if err != nil || k != (decodedKey{kind: keyGroup, group: "grp"}) {
		t.Fatalf("group key: %+v %v", k, err)
	}
	c := committed{Offset: 123, LeaderEpoch: 5, Metadata: "ü€", CommitTime: 99, ExpireTime: -1}
	if got, err := decodeOffset(encodeOffset(c)); err != nil || got != c {
		t.Fatalf("offset value: %+v %v", got, err)
	}
	g := sampleGroup()
	got, err := decodeGroup(encodeGroup(g))
	if err != nil || !reflect.DeepEqual(got, g) {
		t.Fatalf("group value:\n got %+v %v\nwant %+v", got, err, g)
	}
	cg := sampleConsumerGroup()
	enc := encodeConsumerGroup(cg)
	if groupValueVersion(enc) != valueConsumerGroup {
		t.Fatalf("consumer group value version %d", groupValueVersion(enc))
	}
	gotc, err := decodeConsumerGroup(enc)
	if err != nil || !reflect.DeepEqual(gotc, cg) {
		t.Fatalf("consumer group value:\n got %+v %v\nwant %+v", gotc, err, cg)
	}
}

// Every truncation and every extra byte is refused, never misread.
func TestRecordsRejectDamage(t *testing.T) {
	for name, enc := range map[string][]byte{
		"offset key": offsetKey("g", "t", 1), "group key": groupKey("g"),
		"offset": encodeOffset(committed{Offset: 1, Metadata: "m"}), "group": encodeGroup(sampleGroup()),
		"consumer group": encodeConsumerGroup(sampleConsumerGroup()),
	} {
		decode := func(b []byte) error {
			switch name {
			case "offset key", "group key":
				_, err := decodeKey(b)
				return err
			case "offset":
				_, err := decodeOffset(b)
				return err
			case "consumer group":
				_, err := decodeConsumerGroup(b)
				return err
			default:
				_, err := decodeGroup(b)
				return err
			}
		}
		for n := 0; n < len(enc); n++ {
			if err := decode(enc[:n]); !errors.Is(err, errBadRecord) {
				t.Errorf("%s cut at %d of %d: %v", name, n, len(enc), err)
			}
		}
		if err := decode(append(bytes.Clone(enc), 0)); !errors.Is(err, errBadRecord) {
			t.Errorf("%s with a trailing byte: %v", name, err)
		}
	}
	// An unknown value version is refused, not guessed at.
	v := encodeOffset(committed{})
	v[1] = 9
	if _, err := decodeOffset(v); !errors.Is(err, errBadRecord) {
		t.Errorf("version 9: %v", err)
	}
}

func FuzzDecodeRecords(f *testing.F) {
	f.Add(offsetKey("g", "t", 1))
	f.Add(groupKey("group"))
	f.Add(encodeOffset(committed{Offset: 5, Metadata: "x", ExpireTime: -1}))
	f.Add(encodeGroup(sampleGroup()))
	f.Add(encodeConsumerGroup(sampleConsumerGroup()))
	f.Add([]byte{0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		if k, err := decodeKey(b); err == nil {
			var again []byte
			if k.kind == keyOffset {
				again = offsetKey(k.group, k.topic, k.partition)
			} else {
				again = groupKey(k.group)
			}
			if !bytes.Equal(again, b) {
				t.Fatalf("key %x decodes to %+v, which encodes to %x", b, k, again)
			}
		}
		if c, err := decodeOffset(b); err == nil && !bytes.Equal(encodeOffset(c), b) {
			t.Fatalf("offset value %x does not re-encode", b)
		}
		if g, err := decodeGroup(b); err == nil && !bytes.Equal(encodeGroup(g), b) {
			t.Fatalf("group value %x does not re-encode", b)
		}
		if g, err := decodeConsumerGroup(b); err == nil && !bytes.Equal(encodeConsumerGroup(g), b) {
			t.Fatalf("consumer group value %x does not re-encode", b)
		}
		subscriptionTopics(b)
	})
}
