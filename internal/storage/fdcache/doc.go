// Package fdcache keeps a bounded number of read-only files open: the
// descriptors of sealed segments, which are only read, shared by every log
// of a data directory. A partition with many old segments then costs no
// descriptor for each of them; only what is being read, and the most
// recently read, stays open (Redpanda keeps such a bounded cache too).
//
// Invariants:
//   - At most Max files are open, except while more than Max are in use at
//     once (acquired and not yet released) or being opened: a file in use
//     is never closed under its reader. The least recently released idle
//     file is closed first.
//   - An open file is shared by every reader of its path; two readers that
//     miss at once may both open it, and the second closes its copy.
//   - After Forget(path) (the file is being deleted, or its segment closed)
//     the cache never hands out the open file again; it is closed at once,
//     or when its last reader releases it. A file opened while any Forget
//     ran is served to its reader and never cached: it may be the old file
//     of a path being replaced.
//
// Concurrency: all methods are safe for concurrent use; one mutex guards
// the map and the idle list; files are opened and closed without it, so
// readers of other segments never wait on one segment's syscalls. No
// goroutine is started.
package fdcache
