package cli

import (
	"os"
	"strings"
)

// EnvOr returns the STROM_* environment variable for a flag (--data-dir is
// STROM_DATA_DIR), or def.
func EnvOr(name, def string) string {
	if v, ok := os.LookupEnv("STROM_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))); ok {
		return v
	}
	return def
}

// EnvList returns the comma-separated STROM_* environment variable for a
// flag, or nothing.
func EnvList(name string) []string {
	var out []string
	for _, v := range strings.Split(EnvOr(name, ""), ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// DisplayAddr is a listener's address as a user can open it: a wildcard
// host is shown as localhost.
func DisplayAddr(addr string) string {
	if strings.HasPrefix(addr, "[::]:") || strings.HasPrefix(addr, "0.0.0.0:") {
		return "localhost:" + addr[strings.LastIndexByte(addr, ':')+1:]
	}
	return addr
}
