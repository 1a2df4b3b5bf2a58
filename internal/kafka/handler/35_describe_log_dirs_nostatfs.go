//go:build !(linux || darwin || freebsd)

package handler

// diskBytes is unknown (-1, -1) where syscall.Statfs does not exist;
// DescribeLogDirs then answers Kafka's "unknown volume bytes".
func diskBytes(string) (total, usable int64) { return -1, -1 }
