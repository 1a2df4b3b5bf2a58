// Package index implements the two sparse per-segment indexes of the
// partition log, with Kafka's on-disk layouts, so that a reader can find the
// file position of an offset, and the offset of a timestamp, without scanning
// the segment.
//
// Offset index (<base offset>.index), 8-byte entries, big-endian:
//
//	+----------------------------+----------------------------+
//	| relative offset (uint32)   | file position (uint32)     |
//	+----------------------------+----------------------------+
//	  offset - segment base        byte position in the .log of the batch
//	                               holding that offset
//
// Time index (<base offset>.timeindex), 12-byte entries, big-endian:
//
//	+-------------------------------------+----------------------------+
//	| timestamp (int64, unix ms)          | relative offset (uint32)   |
//	+-------------------------------------+----------------------------+
//	  largest timestamp seen in the         last offset of the batch
//	  segment up to this batch              that raised it
//
// Invariants:
//   - Entries are sorted: relative offsets and file positions strictly
//     increase in the offset index; timestamps strictly increase and relative
//     offsets never decrease in the time index.
//   - An index file holds only entries, never preallocated space. Every
//     entry is kept in memory; no file descriptor is held between
//     operations. A sealed index is read once. An active index writes the
//     entries its file lacks when it is synced (the log's flush) or sealed
//     (roll, clean shutdown), so its file may be missing or lag behind;
//     after an unclean stop recovery rebuilds it from the data. On load, the
//     valid entries are the longest sorted prefix (a file preallocated by
//     an older Strom ends in zeros, which are cut at the next write).
//   - An index is a hint: every answer is a lower bound that the reader
//     confirms by scanning batches forward. The log rebuilds a segment's
//     indexes from its data whenever they are missing or fail Verify.
//
// Concurrency: an index is written by the one goroutine appending to its
// segment and read by any number of readers; a RWMutex guards the entries.
package index
