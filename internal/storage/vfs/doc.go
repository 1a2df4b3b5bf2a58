// Package vfs is the filesystem seam of Strom's storage: every file the
// partition log touches is opened through an FS, so tests can substitute a
// filesystem that injects I/O errors or simulates a crash (losing whatever was
// written after the last Sync).
//
// Contract:
//   - File.Sync is the durability point: data written before a successful Sync
//     survives a crash; data written after it may be lost, in whole or in part
//     (a prefix of it may survive).
//   - Create, Rename and Remove are durable only after SyncDir on the parent.
//   - Lock takes an exclusive lock that its process holds until it closes it
//     or dies (flock on the OS); a held lock is a *LockedError naming the
//     holder.
//   - Implementations are safe for concurrent use by multiple goroutines, with
//     at most one goroutine writing a given File at a time.
//
// Default is the operating system's filesystem; File.Sync is fdatasync on
// Linux. The test filesystems live in their own packages, so no production
// binary carries them (pebble's vfs/errorfs shape): memfs, an in-memory
// filesystem with a crash model, whose operations return the same errors as
// the OS's, checked by running the same scripts against both; errorfs,
// which wraps any FS with an Injector that fails chosen operations; and
// diskbench, which measures the disk itself for the benchmarks.
package vfs
