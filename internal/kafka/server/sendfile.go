package server

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/bufpool"
)

// FileRecords is a fetch partition's records as a range of an open file:
// on a plain TCP connection the writer sends them with sendfile, from the
// page cache to the socket without a copy through memory; on TLS (or any
// other connection) it reads them into a buffer first. Release is called
// exactly once, after the write or when the response is dropped.
type FileRecords struct {
	File    *os.File
	Off     int64
	Len     int
	Release func()
}

// fileRecords maps the placeholder a handler put in a partition's
// RecordBatches (by its first byte's address) to its file range.
var fileRecords sync.Map // *byte -> *FileRecords

// RecordsFromFile returns the placeholder to put in a fetch response
// partition's RecordBatches so that the writer sends fr in its place. The
// handler that replaces or drops the placeholder before returning the
// response must call ReleaseRecords on it; once returned, the writer owns
// it.
func RecordsFromFile(fr FileRecords) []byte {
	b := make([]byte, markerLen)
	fileRecords.Store(&b[0], &fr)
	return b
}

// ReleaseRecords releases the file of a placeholder made by
// RecordsFromFile; other bytes are left alone.
func ReleaseRecords(b []byte) {
	if len(b) != markerLen {
		return
	}
	if v, ok := fileRecords.LoadAndDelete(&b[0]); ok {
		if fr := v.(*FileRecords); fr.Release != nil {
			fr.Release()
		}
	}
}

// filePlaceholder returns the file range b stands for, if it is a
// placeholder.
func filePlaceholder(b []byte) *FileRecords {
	if len(b) != markerLen {
		return nil
	}
	if v, ok := fileRecords.Load(&b[0]); ok {
		return v.(*FileRecords)
	}
	return nil
}

// releaseResponse releases the file ranges of a response that will not be
// written.
func releaseResponse(resp kmsg.Response) {
	f, ok := resp.(*kmsg.FetchResponse)
	if !ok {
		return
	}
	for i := range f.Topics {
		for j := range f.Topics[i].Partitions {
			ReleaseRecords(f.Topics[i].Partitions[j].RecordBatches)
		}
	}
}

// errShortFile: the file ended before the range did (truncated since the
// read); the frame cannot be completed, so the connection must close.
var errShortFile = errors.New("records file shorter than the range being sent")

// writeFile writes fr to the connection: sendfile on plain TCP, else a
// read into a pooled buffer and a write.
func (c *conn) writeFile(fr *FileRecords) error {
	var n int64
	var err error
	if tc, ok := c.nc.(*net.TCPConn); ok {
		n, err = sendFile(tc, fr)
		if errors.Is(err, errNoSendfile) {
			n, err = c.copyFile(fr)
		}
	} else {
		n, err = c.copyFile(fr)
	}
	if n > 0 {
		c.s.stats.bytesOut.Add(uint64(n))
		c.touch()
	}
	return err
}

// copyFile reads fr into a pooled buffer and writes it.
func (c *conn) copyFile(fr *FileRecords) (int64, error) {
	buf := bufpool.Get(fr.Len)
	defer bufpool.Put(buf)
	nr, err := fr.File.ReadAt(buf, fr.Off)
	if nr < fr.Len {
		return 0, fmt.Errorf("read %d of %d bytes at %d: %w (%v)", nr, fr.Len, fr.Off, errShortFile, err)
	}
	nw, err := c.nc.Write(buf)
	return int64(nw), err
}
