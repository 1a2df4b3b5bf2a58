// Package errorfs wraps any vfs.FS (Wrap) with an Injector that fails
// chosen operations: the n-th sync (ErrorAfter), the first create of a
// segment (ErrorOnce), a write that stores a prefix and then fails with
// ENOSPC (PartialWrite). A failed operation is not performed. Lock passes
// through.
package errorfs
