package media

// The embedded engine's media: content-addressed files under the data
// directory (dir/ab/ab12…, the hex SHA-256 of the bytes) with their
// metadata in the SQLite table media.
//
// Crash safety rests on one order. Put writes the bytes to a temporary file
// in dir, fsyncs it, renames it to its final name, fsyncs the directory,
// and only then inserts the row: a row never exists without its complete
// file. Delete removes the row, then the file. So what a crash can leave is
// a temporary file or a final file without a row — never served (every read
// starts from the row), rewritten by the next Put of the same bytes, and
// removed by Sweep.

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/wildcathub/wildcat/core/store/sqlite"
)

//go:embed schema/*.sql
var schemaFS embed.FS

// SQLiteSchema is the media table on the embedded engine.
var SQLiteSchema = sqlite.SchemaIn("media", schemaFS, "schema")

// tmpPrefix names Put's temporary files in dir.
const tmpPrefix = ".put-"

// FileStore is the Store on the embedded engine.
type FileStore struct {
	db       *sqlite.DB
	dir      string
	maxBytes int64
	now      func() time.Time

	// locks serialise, per file, the steps that must not interleave: Put's
	// rename and row insert, Delete's row delete and file removal, and
	// Sweep's check and removal. One daemon owns a data directory, so
	// in-process locks suffice. Striped by the id's first byte.
	locks [256]sync.Mutex
	// Sweep leaves alone the temporary files Puts of this process are
	// writing: those in spooling (by base name) or written since opened.
	spooling sync.Map
	opened   time.Time
	// afterFile, when set (tests), runs between the file's rename and the
	// row's insert; an error stops Put there, as a crash would.
	afterFile func() error
}

var _ Store = (*FileStore)(nil)

// NewFileStore keeps media files under dir (created if missing) and their
// rows in db, which must have SQLiteSchema; maxBytes bounds every file.
func NewFileStore(db *sqlite.DB, dir string, maxBytes int64) (*FileStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("media directory: %w", err)
	}
	return &FileStore{db: db, dir: filepath.Clean(dir), maxBytes: maxBytes, now: time.Now, opened: time.Now()}, nil
}

// MaxBytes is the largest file the store accepts.
func (s *FileStore) MaxBytes() int64 { return s.maxBytes }

// Dir is the directory holding the files.
func (s *FileStore) Dir() string { return s.dir }

func (s *FileStore) path(id string) string { return filepath.Join(s.dir, id[:2], id) }

func (s *FileStore) lock(id string) func() {
	b, _ := hex.DecodeString(id[:2])
	m := &s.locks[b[0]]
	m.Lock()
	return m.Unlock
}

// Put implements Store.
func (s *FileStore) Put(ctx context.Context, r io.Reader, mimetype, filename string) (*Info, error) {
	// The id is the hash of the whole content, known only at its end: the
	// bytes go to a temporary file beside their final place first.
	tmp, done, err := s.spool()
	if err != nil {
		return nil, err
	}
	defer done()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(r, s.maxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read media: %w", err)
	}
	if n > s.maxBytes {
		return nil, &TooLargeError{Limit: s.maxBytes}
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if in, err := s.Stat(ctx, sum); err == nil {
		return in, nil
	} else if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	unlock, err := s.settle(tmp, sum)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if s.afterFile != nil {
		if err := s.afterFile(); err != nil {
			return nil, err
		}
	}
	in := &Info{ID: sum, SHA256: sum, Size: n, Mimetype: mimetype, Filename: filename, Uploaded: s.now().UTC().Truncate(time.Millisecond)}
	err = s.db.Write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.Exec(`INSERT INTO media (id, size, mimetype, filename, created) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (id) DO NOTHING`, sum, n, mimetype, filename, in.Uploaded.UnixMilli()); err != nil {
			return err
		}
		// The same bytes may have been stored meanwhile: theirs stays.
		return scanInfo(tx.QueryRow(`SELECT id, size, mimetype, filename, created FROM media WHERE id = ?`, sum), in)
	})
	if err != nil {
		return nil, fmt.Errorf("store media %s: %w", sum, err)
	}
	return in, nil
}

// spool creates a temporary file beside the media files, for bytes whose
// id is known only once they are all read; done removes it unless it was
// placed.
func (s *FileStore) spool() (tmp *os.File, done func(), err error) {
	tmp, err = os.CreateTemp(s.dir, tmpPrefix+"*")
	if err != nil {
		return nil, nil, fmt.Errorf("spool media: %w", err)
	}
	s.spooling.Store(filepath.Base(tmp.Name()), struct{}{})
	return tmp, func() {
		tmp.Close()
		os.Remove(tmp.Name()) // a no-op once renamed
		s.spooling.Delete(filepath.Base(tmp.Name()))
	}, nil
}

// settle makes the spooled file durable and places it under id, holding
// id's lock, which the caller releases with unlock once its row is
// written.
func (s *FileStore) settle(tmp *os.File, id string) (unlock func(), err error) {
	if err := tmp.Sync(); err != nil {
		return nil, fmt.Errorf("sync media %s: %w", id, err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("write media %s: %w", id, err)
	}
	unlock = s.lock(id)
	if err := s.placeFile(tmp.Name(), id); err != nil {
		unlock()
		return nil, err
	}
	return unlock, nil
}

// placeFile renames the complete, synced temporary file to the id's name
// and makes the rename durable. Whatever is already there (a file of an
// interrupted Put, or a concurrent one) is replaced by bytes known to be
// whole; open readers keep the file they opened.
func (s *FileStore) placeFile(tmp, id string) error {
	shard := filepath.Dir(s.path(id))
	if err := os.Mkdir(shard, 0o700); err == nil {
		if err := syncDir(s.dir); err != nil {
			return err
		}
	} else if !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("media directory: %w", err)
	}
	if err := os.Rename(tmp, s.path(id)); err != nil {
		return fmt.Errorf("place media %s: %w", id, err)
	}
	return syncDir(shard)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

type rowScanner interface{ Scan(dest ...any) error }

func scanInfo(row rowScanner, in *Info) error {
	var created int64
	if err := row.Scan(&in.ID, &in.Size, &in.Mimetype, &in.Filename, &created); err != nil {
		return err
	}
	in.SHA256 = in.ID
	in.Uploaded = time.UnixMilli(created).UTC()
	return nil
}

// Stat implements Store.
func (s *FileStore) Stat(ctx context.Context, id string) (*Info, error) {
	if !ValidID(id) {
		return nil, notFound(id)
	}
	var in Info
	err := scanInfo(s.db.Reader().QueryRowContext(ctx, `SELECT id, size, mimetype, filename, created FROM media WHERE id = ?`, id), &in)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound(id)
	}
	if err != nil {
		return nil, fmt.Errorf("read media %s: %w", id, err)
	}
	return &in, nil
}

// Open implements Store: the file itself, so a range reads only what it
// covers.
func (s *FileStore) Open(ctx context.Context, id string) (*Reader, error) {
	in, err := s.Stat(ctx, id)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(s.path(id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, notFound(id) // deleted since the row was read
	}
	if err != nil {
		return nil, fmt.Errorf("open media %s: %w", id, err)
	}
	// The row promises a whole file; never serve anything else.
	if fi, err := f.Stat(); err != nil || fi.Size() != in.Size {
		f.Close()
		if err == nil {
			err = fmt.Errorf("file has %d bytes, its row %d", fi.Size(), in.Size)
		}
		return nil, fmt.Errorf("open media %s: %w", id, err)
	}
	return &Reader{Info: in, rs: f, closer: f}, nil
}

// ReadAll implements Store.
func (s *FileStore) ReadAll(ctx context.Context, id string) ([]byte, *Info, error) {
	return readAll(s.Open(ctx, id))
}

// Delete implements Store: the row first (the file is gone for readers at
// once), then the file.
func (s *FileStore) Delete(ctx context.Context, id string) error {
	if !ValidID(id) {
		return nil
	}
	unlock := s.lock(id)
	defer unlock()
	err := s.db.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`DELETE FROM media WHERE id = ?`, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete media %s: %w", id, err)
	}
	if err := os.Remove(s.path(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete media file %s: %w", id, err)
	}
	return nil
}

// List implements Store.
func (s *FileStore) List(ctx context.Context, after string, limit int) ([]*Info, error) {
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT id, size, mimetype, filename, created FROM media
		WHERE id > ? ORDER BY id LIMIT ?`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("list media: %w", err)
	}
	defer rows.Close()
	var out []*Info
	for rows.Next() {
		in := &Info{}
		if err := scanInfo(rows, in); err != nil {
			return nil, fmt.Errorf("list media: %w", err)
		}
		out = append(out, in)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list media: %w", err)
	}
	return out, nil
}

// Count implements Store.
func (s *FileStore) Count(ctx context.Context) (int64, error) {
	var n int64
	if err := s.db.Reader().QueryRowContext(ctx, `SELECT count(*) FROM media`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count media: %w", err)
	}
	return n, nil
}

// Sweep implements Store: it removes the temporary files of Puts that are
// not running (interrupted by a crash) and the files that have no row (a
// crash between a Put's rename and its insert, or a Delete's two steps).
// It reads one directory at a time and the ids of that directory in one
// query, so it is meant for the start, not for a tight loop.
func (s *FileStore) Sweep(ctx context.Context) (int, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return 0, fmt.Errorf("sweep media: %w", err)
	}
	removed := 0
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return removed, err
		}
		name := filepath.Join(s.dir, e.Name())
		switch {
		case !e.IsDir() && strings.HasPrefix(e.Name(), tmpPrefix):
			if _, busy := s.spooling.Load(e.Name()); busy {
				continue
			}
			if fi, err := e.Info(); err != nil || !fi.ModTime().Before(s.opened) {
				continue // gone already, or being written by this process
			}
			if err := os.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return removed, fmt.Errorf("sweep media: %w", err)
			}
			removed++
		case e.IsDir() && isShard(e.Name()):
			n, err := s.sweepShard(ctx, e.Name())
			removed += n
			if err != nil {
				return removed, err
			}
		}
	}
	return removed, nil
}

// isShard reports a directory named like the first two digits of an id.
func isShard(name string) bool { return len(name) == 2 && ValidID(name+strings.Repeat("0", 62)) }

// sweepShard removes the files of one shard directory that have no row.
func (s *FileStore) sweepShard(ctx context.Context, shard string) (int, error) {
	entries, err := os.ReadDir(filepath.Join(s.dir, shard))
	if err != nil {
		return 0, fmt.Errorf("sweep media: %w", err)
	}
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT id FROM media WHERE id >= ? AND id < ?`,
		shard, shard+"g") // every id starting with shard: hex digits sort below "g"
	if err != nil {
		return 0, fmt.Errorf("sweep media: %w", err)
	}
	stored := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, fmt.Errorf("sweep media: %w", err)
		}
		stored[id] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("sweep media: %w", err)
	}
	removed := 0
	for _, e := range entries {
		id := e.Name()
		if e.IsDir() || stored[id] || !ValidID(id) || id[:2] != shard {
			continue
		}
		n, err := s.removeOrphan(ctx, id)
		removed += n
		if err != nil {
			return removed, err
		}
	}
	return removed, nil
}

// removeOrphan removes id's file if it still has no row, under the lock a
// Put takes between placing a file and inserting its row.
func (s *FileStore) removeOrphan(ctx context.Context, id string) (int, error) {
	unlock := s.lock(id)
	defer unlock()
	if _, err := s.Stat(ctx, id); err == nil {
		return 0, nil // a Put stored it since the listing
	} else if !errors.Is(err, ErrNotFound) {
		return 0, err
	}
	if err := os.Remove(s.path(id)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, nil
		}
		return 0, fmt.Errorf("sweep media %s: %w", id, err)
	}
	return 1, nil
}

// putAs implements engine: the bytes r yields, spooled beside their final
// place, stored under the id known once r is read.
func (s *FileStore) putAs(ctx context.Context, r io.Reader, id func() string, mimetype, filename string, replace bool) (*Info, error) {
	tmp, done, err := s.spool()
	if err != nil {
		return nil, err
	}
	defer done()
	n, err := io.Copy(tmp, r)
	if err != nil {
		return nil, fmt.Errorf("read media: %w", err)
	}
	sum := id()
	if !ValidID(sum) {
		return nil, fmt.Errorf("store media: invalid id %q", sum)
	}
	if !replace {
		if in, err := s.Stat(ctx, sum); err == nil {
			return in, nil
		} else if !errors.Is(err, ErrNotFound) {
			return nil, err
		}
	}
	unlock, err := s.settle(tmp, sum)
	if err != nil {
		return nil, err
	}
	defer unlock()
	in := &Info{ID: sum, SHA256: sum, Size: n, Mimetype: mimetype, Filename: filename, Uploaded: s.now().UTC().Truncate(time.Millisecond)}
	err = s.db.Write(ctx, func(tx *sql.Tx) error {
		// A replaced file keeps its row's metadata; only its size follows
		// the new bytes.
		if _, err := tx.Exec(`INSERT INTO media (id, size, mimetype, filename, created) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET size = excluded.size`, sum, n, mimetype, filename, in.Uploaded.UnixMilli()); err != nil {
			return err
		}
		return scanInfo(tx.QueryRow(`SELECT id, size, mimetype, filename, created FROM media WHERE id = ?`, sum), in)
	})
	if err != nil {
		return nil, fmt.Errorf("store media %s: %w", sum, err)
	}
	return in, nil
}

// setFilename implements engine.
func (s *FileStore) setFilename(ctx context.Context, id, filename string) error {
	err := s.db.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE media SET filename = ? WHERE id = ?`, filename, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("media %s: set file name: %w", id, err)
	}
	return nil
}

// maySeal implements engine: the file itself tells (a small read).
func (s *FileStore) maySeal(*Info) bool { return true }
