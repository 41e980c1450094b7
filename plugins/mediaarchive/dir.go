package main

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/wildcathub/wildcat/sdk"
)

// dirTree keeps the retention sweep from removing a month directory that
// is empty only because a commit has just made it and not yet renamed its
// file into it: commits hold it shared, the sweep's removal of empty
// directories exclusively.
var dirTree sync.RWMutex

// tmpDir holds files being written; nothing in it is ever archived media.
func tmpDir(root string) string { return filepath.Join(root, ".tmp") }

// finalPath is {root}/{account}/{yyyy}/{mm}/{sha256}.{ext}.
func finalPath(root, acct string, ts time.Time, sum, ext string) string {
	return filepath.Join(root, safeSegment(acct), fmt.Sprintf("%04d", ts.Year()), fmt.Sprintf("%02d", int(ts.Month())), sum+"."+ext)
}

// safeSegment keeps an account id one harmless path segment.
func safeSegment(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == 0 {
			return '_'
		}
		return r
	}, s)
	if s == "" || s == "." || s == ".." || strings.HasPrefix(s, ".") {
		s = "_" + s
	}
	return s
}

// tempPrefix names this process's temporary files: "{pid}-".
func tempPrefix() string { return strconv.Itoa(os.Getpid()) + "-" }

// commit makes the spooled file the final file: fsync, rename into place,
// fsync the directory, so a crash leaves either no file or the whole file
// under the final name, never a part. If the final file exists (the same
// bytes, archived by an earlier or concurrent job), the spool is dropped
// and the file touched (its modification time is the retention clock).
func (s *spooled) commit(final string, now time.Time) error {
	dirTree.RLock()
	defer dirTree.RUnlock()
	if err := os.MkdirAll(filepath.Dir(final), 0o750); err != nil {
		return err
	}
	if _, err := os.Stat(final); err == nil {
		s.discard()
		return os.Chtimes(final, now, now)
	}
	if err := s.f.Sync(); err != nil {
		return err
	}
	if err := s.f.Close(); err != nil {
		return err
	}
	name := s.f.Name()
	s.f = nil
	if err := os.Rename(name, final); err != nil {
		os.Remove(name)
		return err
	}
	return syncDir(filepath.Dir(final))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// cleanTemp removes temporary files whose writing process is gone (a
// plugin process that was killed mid-write).
func cleanTemp(root string) {
	entries, err := os.ReadDir(tmpDir(root))
	if err != nil {
		return
	}
	for _, e := range entries {
		pidStr, _, _ := strings.Cut(e.Name(), "-")
		if pid, err := strconv.Atoi(pidStr); err == nil && (pid == os.Getpid() || alive(pid)) {
			continue
		}
		os.Remove(filepath.Join(tmpDir(root), e.Name()))
	}
}

func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || err == syscall.EPERM
}

// sweepDir deletes archived files of the dir target not touched since
// cutoff: a file is touched whenever a message references it, so this is
// "older than retention_days and not referenced by a newer message".
// Empty month, year and account directories go too.
func sweepDir(root string, cutoff time.Time) (int, error) {
	n := 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() {
			if p == tmpDir(root) {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil || !info.ModTime().Before(cutoff) {
			return nil
		}
		if os.Remove(p) == nil {
			n++
		}
		return nil
	})
	// Remove empty directories bottom-up (Remove fails on non-empty ones).
	dirTree.Lock()
	defer dirTree.Unlock()
	var dirs []string
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && p != root && p != tmpDir(root) {
			dirs = append(dirs, p)
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		_ = os.Remove(dirs[i])
	}
	return n, err
}

// sweepInterval is how often the dir and s3 targets' retention runs.
const sweepInterval = time.Hour

// retention is retention_days as a duration.
func retention(cfg *Config) time.Duration { return time.Duration(cfg.RetentionDays) * 24 * time.Hour }

func (a *Archive) sweepLoop() {
	for {
		a.sweep(context.Background())
		time.Sleep(sweepInterval)
	}
}

// sweep runs the dir and s3 targets' retention once, by the archive's
// clock.
func (a *Archive) sweep(ctx context.Context) {
	log := sdk.Logger(ctx)
	cfg := a.config()
	if cfg.has(TargetDir) && cfg.RetentionDays > 0 {
		if n, err := sweepDir(cfg.Dir, a.now().Add(-retention(cfg))); err != nil {
			log.Warn("dir retention failed", "error", err)
		} else if n > 0 {
			log.Info("dir retention deleted archived files", "count", n)
		}
	}
	if n, err := a.sweepS3(ctx); err != nil {
		log.Warn("s3 retention failed", "error", err)
	} else if n > 0 {
		log.Info("s3 retention deleted archived objects", "count", n)
	}
}
