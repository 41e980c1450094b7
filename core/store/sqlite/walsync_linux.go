package sqlite

import (
	"os"
	"syscall"
)

// flushData is fdatasync, what SQLite itself uses on Linux: the log's
// data and the size needed to read it, not its timestamps.
func flushData(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}
