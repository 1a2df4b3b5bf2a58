// Package segment is one file of a partition log: <base offset>.log holding
// RecordBatch v2 batches back to back, exactly as Kafka stores them, with its
// offset index (<base>.index) and time index (<base>.timeindex).
//
// The .log file is a plain concatenation of batches (see package record for
// the batch layout); the first 12 bytes of each batch give its base offset
// and length, so the file can be walked without any other framing:
//
//	+------------------+-------------+------------------------------+
//	| base offset (8)  | length (4)  | rest of the batch (length B) |  ... next batch
//	+------------------+-------------+------------------------------+
//
// Invariants:
//   - Batches are whole and their offsets strictly increase; every offset
//     in the segment is >= its base offset and < base + 2^32.
//   - Size() counts whole batches only: a reader never sees a batch that is
//     still being written, and after a failed write the file is truncated
//     back to the last whole batch.
//   - A sealed segment is read-only; its indexes are trimmed, synced, and
//     loaded lazily on first read (rebuilt from the data if missing or
//     inconsistent). The active segment's index entries are kept in memory
//     and written to their files (never preallocated) by SyncIndexes (a
//     log flush) and when the segment is sealed (roll, clean shutdown), so
//     while it is active its .index and .timeindex may be missing or short.
//   - Only the active segment holds a descriptor of its own (its writer).
//     A sealed segment's .log is opened on demand for reads through
//     Config.Files, the data directory's bounded descriptor cache (package
//     fdcache); Close and Delete forget it there. Index files are read
//     whole and hold no descriptor either, so an idle partition costs one
//     descriptor however many segments it has.
//   - Recover re-validates every batch (header, bounds, CRC-32C, increasing
//     offsets), truncates at the first bad byte and rebuilds the indexes;
//     it fails only on I/O errors, never on bad data. Failing to write an
//     index file (ErrIndexWrite) leaves a usable segment with its indexes
//     in memory; a failed fsync of the data is ErrSync.
//   - Read checks a batch's CRC-32C once per process, not on every read
//     (with verify set): verified is a prefix of the file whose batches
//     this process vouches for, because Append wrote them (the log
//     validated them in memory first), Recover checked them, or an earlier
//     Read checked them. A Read hashes only the batches ending past it and
//     then extends it over what it checked, if contiguous. A batch corrupt
//     on disk past the prefix is ErrCorrupt on every read, never served;
//     a byte that rots after it was checked is served until the next
//     start (Kafka checks no CRC on fetch at all; the consumer does).
//     Open and RecoverTrusted trust nothing; TruncateTo lowers the prefix
//     with the size. Why: repeated and catch-up reads of the same bytes
//     were re-hashed, a fifth of the broker's CPU per MB fetched.
//   - ReadSection hands out batches as a Section (an open *os.File,
//     offset, length) instead of bytes, only when every batch in it is in
//     the verified prefix (so serving it without reading is what Read
//     would serve) and the file is an operating system file. A Section
//     holds its descriptor until Release (the active segment's is opened
//     anew, so that Seal never waits for a socket; a sealed one's comes
//     from the descriptor cache). A truncation after it was handed out
//     leaves it longer than the file: its sender must notice the short
//     read and fail, never send what follows.
//   - TruncateTo cuts the segment at a batch boundary (never inside a
//     batch: ErrNotBatchBoundary), fsyncs the file before anything in
//     memory changes, and makes a sealed segment active again.
//
// Concurrency: one appender (the log's writer) calls Append, Seal,
// TruncateTo and Recover (TruncateTo with no reader on the segment); Read,
// FindTimestamp, Sync and the getters may run concurrently with Append. Readers of the active segment hold fileMu for reading while
// they use its file, and Seal takes it for writing to close the writer, so
// no read ever sees its file closed. Closing or deleting a segment is the log's job, done only when
// no reader holds it.
package segment
