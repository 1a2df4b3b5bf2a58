package logdir

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
)

// partitionMetadataFile names the topic a partition directory belongs to,
// in Kafka's format and under Kafka's name, so that a directory can be
// matched to its topic without the metadata file (a lost __strom_metadata
// is rebuilt from these, a deleted topic's leftovers are recognised by id):
//
//	version: 0
//	topic_id: <the 16-byte id, URL-safe base64 without padding>
const partitionMetadataFile = "partition.metadata"

// TopicIDOf returns the topic id written in p's directory, if any. A
// missing or unreadable file is (zero, false): the id is a hint, never the
// only record of anything.
func (d *Dir) TopicIDOf(p Partition) ([16]byte, bool) {
	var id [16]byte
	f, err := d.fs.Open(filepath.Join(d.PartitionDir(p), partitionMetadataFile))
	if err != nil {
		return id, false
	}
	defer f.Close()
	b := make([]byte, 128)
	n, _ := f.ReadAt(b, 0)
	return parsePartitionMetadata(string(b[:n]))
}

func parsePartitionMetadata(s string) ([16]byte, bool) {
	var id [16]byte
	version, topicID := false, ""
	for _, line := range strings.Split(s, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "version":
			version = strings.TrimSpace(v) == "0"
		case "topic_id":
			topicID = strings.TrimSpace(v)
		}
	}
	raw, err := base64.RawURLEncoding.DecodeString(topicID)
	if !version || err != nil || len(raw) != 16 {
		return id, false
	}
	copy(id[:], raw)
	return id, true
}

// MarkTopicID writes id into p's directory unless it is there already.
// The file is written in place and not fsynced: after a crash it may be
// missing or torn, which TopicIDOf reads as no id (a directory written
// before this file existed), and the next open writes it again.
func (d *Dir) MarkTopicID(p Partition, id [16]byte) error {
	have, ok := d.TopicIDOf(p)
	return d.WriteTopicID(p, id, ok && have == id)
}

// WriteTopicID is MarkTopicID for a caller that read the directory's id
// already: it writes id unless present says the directory has it.
func (d *Dir) WriteTopicID(p Partition, id [16]byte, present bool) error {
	if present {
		return nil
	}
	path := filepath.Join(d.PartitionDir(p), partitionMetadataFile)
	f, err := d.fs.Create(path)
	if err != nil {
		return fmt.Errorf("partition %s: %w", d.PartitionDir(p), err)
	}
	_, err = f.Write([]byte(partitionMetadata(id)))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("partition %s: %s: %w", d.PartitionDir(p), partitionMetadataFile, err)
	}
	return nil
}

// partitionMetadata is the content of a partition.metadata file for id.
func partitionMetadata(id [16]byte) string {
	return "version: 0\ntopic_id: " + base64.RawURLEncoding.EncodeToString(id[:]) + "\n"
}

// HoldsRecords reports whether p's directory has a non-empty segment file:
// only then can it hold a record anyone wrote.
func (d *Dir) HoldsRecords(p Partition) (bool, error) {
	dir := d.PartitionDir(p)
	names, err := d.fs.List(dir)
	if err != nil {
		return false, fmt.Errorf("partition %s: %w", dir, err)
	}
	for _, n := range names {
		if !strings.HasSuffix(n, ".log") {
			continue
		}
		fi, err := d.fs.Stat(filepath.Join(dir, n))
		if err != nil {
			return false, fmt.Errorf("partition %s: %w", dir, err)
		}
		if fi.Size() > 0 {
			return true, nil
		}
	}
	return false, nil
}

// StraySuffix ends the name of a partition directory set aside by SetAside.
const StraySuffix = "-stray"

// SetAside renames p's directory (which must not be open) to
// <topic>-<partition>.<random>-stray, Kafka's name for a log no topic
// claims, and makes the rename durable. Nothing in it is deleted; the new
// name parses as no partition, so later starts leave it alone. It returns
// the new path.
func (d *Dir) SetAside(p Partition) (string, error) {
	d.mu.Lock()
	_, open := d.logs[p]
	d.mu.Unlock()
	if open {
		return "", fmt.Errorf("partition %s: set aside while open", d.PartitionDir(p))
	}
	var r [8]byte
	if _, err := rand.Read(r[:]); err != nil {
		return "", err
	}
	to := d.PartitionDir(p) + "." + hex.EncodeToString(r[:]) + StraySuffix
	if _, err := d.fs.Stat(to); !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("partition %s: set aside: %s exists", d.PartitionDir(p), to)
	}
	if err := d.fs.Rename(d.PartitionDir(p), to); err != nil {
		return "", fmt.Errorf("partition %s: set aside: %w", d.PartitionDir(p), err)
	}
	if err := d.fs.SyncDir(d.path); err != nil {
		return "", fmt.Errorf("data dir %s: %w", d.path, err)
	}
	return to, nil
}
