// Package memfs is an in-memory vfs.FS that models durability, for crash
// tests: New, then Crash (what a power loss would leave), CrashAtWrite (a
// cut at the k-th write, before its fsync) or Snapshot (what a kill -9
// leaves). Its operations return the same errors as the OS's
// (*fs.PathError wrapping a syscall.Errno, *os.LinkError for Rename),
// checked by running the same scripts against both (scripts_test.go).
//
// # The crash model
//
// FS keeps, for every file, its content as written and its content as of
// the last successful Sync; for every directory, its entries and its durable
// entries as of the last SyncDir on it. Crash returns a new FS with what a
// power loss would leave:
//
//   - The tree is what the durable entries reach from the root. A file or
//     directory whose entry was never made durable is gone, even if its data
//     was synced; an unsynced remove or rename is undone. A new directory
//     needs SyncDir on its parent like a new file does; the root is always
//     durable.
//   - A file holds the bytes it had at its last Sync, overlaid with a prefix
//     of what was written since, chosen by CrashOptions.KeepUnsyncedPrefix
//     (none by default). Unsynced changes count from the lowest offset
//     written or truncated since the Sync, and are taken to reach the disk in
//     offset order. An unsynced truncation is undone, so a file never
//     shrinks in a crash unless the truncation was synced.
//
// Deliberate simplifications, where a real filesystem has more outcomes:
//
//   - Directory operations not yet made durable are always lost, all of them;
//     Crash never keeps some and drops others, though a journaling filesystem
//     often commits them early. Snapshot is the other extreme: everything as
//     written survives, as when only the process dies.
//   - A rename is atomic: SyncDir on either its source or its target directory
//     makes it durable, and the file then durably has its current name. A file
//     is never durably under two names, or lost between them.
//   - File.Sync does not make the file's own directory entry durable (a
//     journaling filesystem often does, as a side effect of its journal
//     commit; POSIX does not promise it).
//   - Writes are not torn out of order: the surviving part of the unsynced
//     data is always a prefix. Use FS.Mutate on the crashed filesystem to
//     corrupt bytes anywhere.
//
// A cut at a random time tends to miss the moment between a write and its
// fsync; CrashAtWrite arms a cut at the k-th file write from now, taken
// right after that write lands (with a hook run first, under the same lock,
// where a test stops its network).
//
// Crash and Snapshot copy everything: files still open on the old FS keep
// working on it and never reach the new one.
package memfs
