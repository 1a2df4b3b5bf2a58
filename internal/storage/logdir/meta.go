package logdir

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/stromhq/strom/internal/storage/atomicfile"
	"github.com/stromhq/strom/internal/storage/vfs"
)

// metaFile names the data directory's identity, in Kafka's format and
// under Kafka's name, so that `kafka-storage.sh format` users find what
// they know:
//
//	cluster.id=<22-character id>
//	directory.id=<22-character id>
//	node.id=<node.id>
//	version=1
const metaFile = "meta.properties"

// Meta is the identity a data directory was formatted with.
type Meta struct {
	ClusterID   string
	NodeID      int32
	DirectoryID string
}

// Errors of the data directory's identity.
var (
	// ErrOtherCluster: the directory belongs to another cluster.
	ErrOtherCluster = errors.New("data dir formatted for another cluster")
	// ErrOtherNode: the directory belongs to another node.id.
	ErrOtherNode = errors.New("data dir formatted for another node")
	// ErrBadUUID: not a Kafka UUID (16 bytes, URL-safe base64 without
	// padding, 22 characters).
	ErrBadUUID = errors.New("not a Kafka UUID")
	// ErrFormatted: Format found the directory formatted already.
	ErrFormatted = errors.New("data dir already formatted")
	// ErrMetaWrite: Identify could not write a new meta.properties (a full
	// disk); the identity it returns holds for this run only.
	ErrMetaWrite = errors.New("meta.properties not written")
)

// RandomUUID returns a new random UUID in Kafka's text form, as
// `kafka-storage.sh random-uuid` prints it.
func RandomUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// CheckUUID reports whether s is a UUID in Kafka's text form.
func CheckUUID(s string) error {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != 16 {
		return fmt.Errorf("%w: %q", ErrBadUUID, s)
	}
	return nil
}

// readMeta reads the directory's meta.properties; a missing file is
// (Meta{}, false, nil).
func (d *Dir) readMeta() (Meta, bool, error) {
	b, err := atomicfile.ReadBytes(d.fs, filepath.Join(d.path, metaFile), 64<<10)
	if errors.Is(err, fs.ErrNotExist) {
		return Meta{}, false, nil
	}
	if err != nil {
		return Meta{}, false, fmt.Errorf("data dir %s: %s: %w", d.path, metaFile, err)
	}
	m, err := parseMeta(b)
	if err != nil {
		return Meta{}, false, fmt.Errorf("data dir %s: %s: %w; restore the file, or remove it and the next start writes a new one (with a new cluster id)",
			d.path, metaFile, err)
	}
	return m, true, nil
}

// parseMeta reads meta.properties (Java properties, version 1).
func parseMeta(b []byte) (Meta, error) {
	var m Meta
	kv := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return m, fmt.Errorf("line %q: want key=value", line)
		}
		kv[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	if err := sc.Err(); err != nil {
		return m, err
	}
	if kv["version"] != "1" {
		return m, fmt.Errorf("version %q: only version 1 is known", kv["version"])
	}
	if err := CheckUUID(kv["cluster.id"]); err != nil {
		return m, fmt.Errorf("cluster.id: %w", err)
	}
	n, err := strconv.ParseInt(kv["node.id"], 10, 32)
	if err != nil || n < 0 {
		return m, fmt.Errorf("node.id %q: want a non-negative integer", kv["node.id"])
	}
	m = Meta{ClusterID: kv["cluster.id"], NodeID: int32(n), DirectoryID: kv["directory.id"]}
	return m, nil
}

func (d *Dir) writeMeta(m Meta) error {
	content := fmt.Sprintf("#\n#Written by strom\ncluster.id=%s\ndirectory.id=%s\nnode.id=%d\nversion=1\n", m.ClusterID, m.DirectoryID, m.NodeID)
	if err := atomicfile.WriteBytes(d.fs, filepath.Join(d.path, metaFile), []byte(content)); err != nil {
		return fmt.Errorf("data dir %s: %s: %w", d.path, metaFile, err)
	}
	return nil
}

// Identify checks the directory's identity against this node: a directory
// formatted for another node.id, or (with clusterID set) another cluster,
// is refused. A directory never formatted (a new one, or one written
// before Strom kept meta.properties) is formatted now, under clusterID or,
// when that is empty, a new random one.
func (d *Dir) Identify(nodeID int32, clusterID string) (Meta, error) {
	return d.identify(nodeID, clusterID, clusterID)
}

// IdentifyOr is Identify for a node whose cluster id is not given: a
// formatted directory keeps its own, a new one is formatted with fresh
// (a cluster's nodes derive the same id from their common configuration,
// so that formatting stays optional).
func (d *Dir) IdentifyOr(nodeID int32, fresh string) (Meta, error) {
	return d.identify(nodeID, "", fresh)
}

func (d *Dir) identify(nodeID int32, clusterID, fresh string) (Meta, error) {
	m, ok, err := d.readMeta()
	if err != nil {
		return Meta{}, err
	}
	if ok {
		switch {
		case m.NodeID != nodeID:
			return m, fmt.Errorf("%w: data dir %s belongs to node.id %d, this node is %d; use that node's configuration or another data dir",
				ErrOtherNode, d.path, m.NodeID, nodeID)
		case clusterID != "" && m.ClusterID != clusterID:
			return m, fmt.Errorf("%w: data dir %s belongs to cluster %s, not %s", ErrOtherCluster, d.path, m.ClusterID, clusterID)
		}
		return m, nil
	}
	clusterID = fresh
	if clusterID == "" {
		clusterID = RandomUUID()
	} else if err := CheckUUID(clusterID); err != nil {
		return Meta{}, err
	}
	m = Meta{ClusterID: clusterID, NodeID: nodeID, DirectoryID: RandomUUID()}
	if err := d.writeMeta(m); err != nil {
		return m, fmt.Errorf("%w: %w", ErrMetaWrite, err)
	}
	return m, nil
}

// Format formats the data directory at path for clusterID and nodeID, as
// `kafka-storage.sh format` does: a directory formatted already is
// ErrFormatted, unless ignoreFormatted is set and its identity matches.
func Format(fsys vfs.FS, path string, clusterID string, nodeID int32, ignoreFormatted bool) (Meta, error) {
	if err := CheckUUID(clusterID); err != nil {
		return Meta{}, fmt.Errorf("cluster id: %w", err)
	}
	d, err := Open(fsys, path, nil)
	if err != nil {
		return Meta{}, err
	}
	defer d.Close()
	m, ok, err := d.readMeta()
	if err != nil {
		return Meta{}, err
	}
	if ok && !ignoreFormatted {
		return m, fmt.Errorf("%w: %s (cluster %s, node.id %d); use --ignore-formatted to accept it as it is",
			ErrFormatted, path, m.ClusterID, m.NodeID)
	}
	return d.Identify(nodeID, clusterID)
}
