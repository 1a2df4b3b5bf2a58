// Package atomicfile is Strom's one way to keep a small durable file: the
// checkpoints, the metadata store, producer-state snapshots (and, with the
// cluster, raft's hard state and snapshots). Each is a header and a
// payload, replaced whole:
//
//	+-----------+-------------+----------------+----------------+---------+
//	| magic (4) | version (2) | CRC-32C (4)    | length (4)     | payload |
//	|           |             | of the payload | of the payload |         |
//	+-----------+-------------+----------------+----------------+---------+
//
// all big-endian. Write puts the new content in <name>.tmp, fsyncs it,
// renames it over <name> and fsyncs the directory, so a reader (after a
// crash too) sees the old file or the new one, never a mix; a failed write
// removes its temporary file, which on a full disk would only hold space.
// ReadBytes reads a file whole (bounded), and Decode checks the magic,
// the length and the checksum and hands back the version and payload: any
// mismatch is ErrCorrupt, and the caller decides what a corrupt file means
// (full recovery, refusing to start, ...). Each caller decodes through one
// function of its own that its fuzz target exercises. Decode never panics
// and allocates nothing: the payload is a sub-slice.
package atomicfile
