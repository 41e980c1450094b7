//go:build !linux

package sqlite

import "os"

// flushData is fsync (F_FULLFSYNC on macOS, as SQLite's fullfsync).
func flushData(f *os.File) error { return f.Sync() }
