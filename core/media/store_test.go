package media_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/wildcathub/wildcat/core/media"
	"github.com/wildcathub/wildcat/core/store"
	"github.com/wildcathub/wildcat/core/store/sqlite"
	"github.com/wildcathub/wildcat/core/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(storetest.Main(m)) }

// engine is one store under test and what the engine-specific checks need.
type engine struct {
	media.Store
	// stored counts what holds bytes: files under the directory (the
	// file store; temporary files included) or chunks (GridFS).
	stored func(t *testing.T) int
}

func newEngine(t *testing.T, e storetest.Engine, maxBytes int64) engine {
	t.Helper()
	switch e {
	case storetest.SQLite:
		s := newFileStore(t, storetest.NewSQLite(t, media.SQLiteSchema), t.TempDir(), maxBytes)
		return engine{Store: s, stored: func(t *testing.T) int { return len(filesUnder(t, s.Dir())) }}
	case storetest.MongoDB:
		db := storetest.NewDatabase(t)
		return engine{Store: media.NewGridFS(db, maxBytes), stored: func(t *testing.T) int {
			n, err := db.Collection(store.MediaChunks).CountDocuments(context.Background(), bson.D{})
			if err != nil {
				t.Fatal(err)
			}
			return int(n)
		}}
	}
	t.Fatalf("unknown engine %s", e)
	return engine{}
}

func newFileStore(t *testing.T, db *sqlite.DB, dir string, maxBytes int64) *media.FileStore {
	t.Helper()
	s, err := media.NewFileStore(db, dir, maxBytes)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// filesUnder lists every regular file below dir, relative to it.
func filesUnder(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// pattern is n bytes that differ from chunk to chunk.
func pattern(n, seed int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte((i*7 + seed) % 251)
	}
	return b
}

func TestStore(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) {
		ctx := context.Background()

		t.Run("put, stat, read back", func(t *testing.T) {
			s := newEngine(t, e, 1<<20)
			data := pattern(600_000, 1)
			before := time.Now().Add(-time.Second)
			in, err := s.Put(ctx, bytes.NewReader(data), "application/pdf", "report.pdf")
			if err != nil {
				t.Fatal(err)
			}
			want := sum(data)
			if in.ID != want || in.SHA256 != want || in.Size != int64(len(data)) || in.Mimetype != "application/pdf" || in.Filename != "report.pdf" ||
				in.Uploaded.Before(before) || in.Uploaded.After(time.Now()) {
				t.Fatalf("put answered %+v", in)
			}
			st, err := s.Stat(ctx, want)
			if err != nil || *st != *in {
				t.Fatalf("stat %+v, %v; put answered %+v", st, err, in)
			}
			got, gin, err := s.ReadAll(ctx, want)
			if err != nil || !bytes.Equal(got, data) || *gin != *in {
				t.Fatalf("read back %d bytes, %+v, %v", len(got), gin, err)
			}
		})

		t.Run("the same bytes are stored once and keep their first name", func(t *testing.T) {
			s := newEngine(t, e, 1<<20)
			data := pattern(300_000, 2) // two GridFS chunks
			first, err := s.Put(ctx, bytes.NewReader(data), "image/png", "a.png")
			if err != nil {
				t.Fatal(err)
			}
			stored := s.stored(t)
			again, err := s.Put(ctx, bytes.NewReader(data), "application/octet-stream", "b.bin")
			if err != nil {
				t.Fatal(err)
			}
			if *again != *first {
				t.Fatalf("second put answered %+v, first %+v", again, first)
			}
			if n, err := s.Count(ctx); err != nil || n != 1 {
				t.Fatalf("count %d, %v; want 1", n, err)
			}
			if got := s.stored(t); got != stored {
				t.Fatalf("%d stored pieces after the same bytes twice, %d after once", got, stored)
			}
		})

		t.Run("concurrent puts of the same bytes agree", func(t *testing.T) {
			s := newEngine(t, e, 1<<20)
			data := pattern(100_000, 3)
			var wg sync.WaitGroup
			infos := make([]*media.Info, 8)
			errs := make([]error, len(infos))
			for i := range infos {
				wg.Go(func() { infos[i], errs[i] = s.Put(ctx, bytes.NewReader(data), "image/jpeg", fmt.Sprintf("%d.jpg", i)) })
			}
			wg.Wait()
			stored, err := s.Stat(ctx, sum(data))
			if err != nil {
				t.Fatal(err)
			}
			for i := range infos {
				if errs[i] != nil || *infos[i] != *stored {
					t.Fatalf("put %d: %+v, %v; stored %+v", i, infos[i], errs[i], stored)
				}
			}
			if got, _, err := s.ReadAll(ctx, stored.ID); err != nil || !bytes.Equal(got, data) {
				t.Fatalf("read back: %v", err)
			}
		})

		t.Run("ranges read what they cover", func(t *testing.T) {
			s := newEngine(t, e, 1<<20)
			data := pattern(600_000, 4)
			in, err := s.Put(ctx, bytes.NewReader(data), "video/mp4", "")
			if err != nil {
				t.Fatal(err)
			}
			const chunk = media.ChunkSize
			for _, c := range []struct {
				name       string
				off        int64
				whence     int
				start, end int64 // the bytes expected, [start, end)
			}{
				{"first bytes", 0, io.SeekStart, 0, 10},
				{"across a chunk boundary", chunk - 5, io.SeekStart, chunk - 5, chunk + 5},
				{"a whole chunk and more", chunk - 1, io.SeekStart, chunk - 1, 2*chunk + 1},
				{"the tail from the end", -7, io.SeekEnd, 600_000 - 7, 600_000},
			} {
				t.Run(c.name, func(t *testing.T) {
					r, err := s.Open(ctx, in.ID)
					if err != nil {
						t.Fatal(err)
					}
					defer r.Close()
					if pos, err := r.Seek(c.off, c.whence); err != nil || pos != c.start {
						t.Fatalf("seek to %d: %d, %v", c.start, pos, err)
					}
					got := make([]byte, c.end-c.start)
					if _, err := io.ReadFull(r, got); err != nil || !bytes.Equal(got, data[c.start:c.end]) {
						t.Fatalf("read [%d, %d): %v", c.start, c.end, err)
					}
				})
			}
			t.Run("past the end", func(t *testing.T) {
				r, err := s.Open(ctx, in.ID)
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				if _, err := r.Seek(0, io.SeekEnd); err != nil {
					t.Fatal(err)
				}
				if n, err := r.Read(make([]byte, 10)); n != 0 || err != io.EOF {
					t.Fatalf("read at the end: %d, %v", n, err)
				}
			})
			// What GET /v1/media does with a reader: http.ServeContent.
			t.Run("http range", func(t *testing.T) {
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
					r, err := s.Open(req.Context(), in.ID)
					if err != nil {
						http.Error(w, err.Error(), 500)
						return
					}
					defer r.Close()
					http.ServeContent(w, req, "", r.Info.Uploaded, r)
				}))
				defer srv.Close()
				req, _ := http.NewRequest("GET", srv.URL, nil)
				req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", chunk-3, chunk+2))
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				body, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, data[chunk-3:chunk+3]) ||
					resp.Header.Get("Content-Range") != fmt.Sprintf("bytes %d-%d/600000", chunk-3, chunk+2) {
					t.Fatalf("%d %q, %d bytes", resp.StatusCode, resp.Header.Get("Content-Range"), len(body))
				}
			})
		})

		t.Run("too large is refused and leaves nothing", func(t *testing.T) {
			s := newEngine(t, e, 1000)
			_, err := s.Put(ctx, bytes.NewReader(pattern(1001, 5)), "image/png", "")
			var tl *media.TooLargeError
			if !errors.As(err, &tl) || tl.Limit != 1000 || !errors.Is(err, media.ErrTooLarge) {
				t.Fatalf("put of 1001 bytes with a limit of 1000: %v", err)
			}
			if n, _ := s.Count(ctx); n != 0 || s.stored(t) != 0 {
				t.Fatalf("%d files, %d stored pieces after a refused put", n, s.stored(t))
			}
			if in, err := s.Put(ctx, bytes.NewReader(pattern(1000, 5)), "image/png", ""); err != nil || in.Size != 1000 {
				t.Fatalf("put of exactly the limit: %+v, %v", in, err)
			}
		})

		t.Run("a failing upload leaves nothing", func(t *testing.T) {
			s := newEngine(t, e, 1<<20)
			boom := errors.New("connection reset")
			_, err := s.Put(ctx, io.MultiReader(bytes.NewReader(pattern(5000, 6)), errReader{boom}), "image/png", "")
			if !errors.Is(err, boom) {
				t.Fatalf("put: %v, want the reader's error", err)
			}
			if n, _ := s.Count(ctx); n != 0 || s.stored(t) != 0 {
				t.Fatalf("%d files, %d stored pieces after a failed put", n, s.stored(t))
			}
		})

		t.Run("empty file", func(t *testing.T) {
			s := newEngine(t, e, 1<<20)
			in, err := s.Put(ctx, bytes.NewReader(nil), "text/plain", "empty.txt")
			if err != nil || in.Size != 0 || in.ID != sum(nil) {
				t.Fatalf("%+v, %v", in, err)
			}
			if b, _, err := s.ReadAll(ctx, in.ID); err != nil || len(b) != 0 {
				t.Fatalf("read back %d bytes, %v", len(b), err)
			}
		})

		t.Run("unknown and malformed ids are not found", func(t *testing.T) {
			s := newEngine(t, e, 1<<20)
			for _, id := range []string{sum([]byte("never stored")), "", "../../etc/passwd", strings.ToUpper(sum(nil)), sum(nil)[:63]} {
				if _, err := s.Stat(ctx, id); !errors.Is(err, media.ErrNotFound) {
					t.Errorf("stat %q: %v", id, err)
				}
				if _, err := s.Open(ctx, id); !errors.Is(err, media.ErrNotFound) {
					t.Errorf("open %q: %v", id, err)
				}
				if _, _, err := s.ReadAll(ctx, id); !errors.Is(err, media.ErrNotFound) {
					t.Errorf("read %q: %v", id, err)
				}
				if err := s.Delete(ctx, id); err != nil {
					t.Errorf("delete %q: %v", id, err)
				}
			}
		})

		t.Run("delete", func(t *testing.T) {
			s := newEngine(t, e, 1<<20)
			data, other := pattern(400_000, 7), pattern(10, 8)
			in, err := s.Put(ctx, bytes.NewReader(data), "image/png", "")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Put(ctx, bytes.NewReader(other), "image/png", ""); err != nil {
				t.Fatal(err)
			}
			if err := s.Delete(ctx, in.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Open(ctx, in.ID); !errors.Is(err, media.ErrNotFound) {
				t.Fatalf("open after delete: %v", err)
			}
			if n, _ := s.Count(ctx); n != 1 || s.stored(t) != 1 {
				t.Fatalf("%d files, %d stored pieces after deleting one of two", n, s.stored(t))
			}
			if err := s.Delete(ctx, in.ID); err != nil {
				t.Fatalf("second delete: %v", err)
			}
			// Stored again, it is whole again.
			if _, err := s.Put(ctx, bytes.NewReader(data), "image/png", ""); err != nil {
				t.Fatal(err)
			}
			if b, _, err := s.ReadAll(ctx, in.ID); err != nil || !bytes.Equal(b, data) {
				t.Fatalf("read after re-put: %v", err)
			}
		})

		t.Run("list pages through everything in id order", func(t *testing.T) {
			s := newEngine(t, e, 1<<20)
			var want []string
			for i := range 7 {
				in, err := s.Put(ctx, bytes.NewReader(pattern(100+i, i)), "image/png", "")
				if err != nil {
					t.Fatal(err)
				}
				want = append(want, in.ID)
			}
			sort.Strings(want)
			var got []string
			after := ""
			for {
				page, err := s.List(ctx, after, 3)
				if err != nil {
					t.Fatal(err)
				}
				if len(page) > 3 {
					t.Fatalf("page of %d, limit 3", len(page))
				}
				if len(page) == 0 {
					break
				}
				for _, in := range page {
					got = append(got, in.ID)
				}
				after = page[len(page)-1].ID
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("listed %v, want %v", got, want)
			}
			if n, err := s.Count(ctx); err != nil || n != 7 {
				t.Fatalf("count %d, %v", n, err)
			}
		})
	})
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// TestFileStoreCrash: whatever a crash interrupts, no row names a file that
// is not whole, so nothing half-written is ever served; what is left over
// is reused or swept.
func TestFileStoreCrash(t *testing.T) {
	ctx := context.Background()
	crash := errors.New("crash")
	data := pattern(300_000, 9)
	id := sum(data)

	// newStore is the store as a daemon (re)started on db and dir sees it.
	type fixture struct {
		db  *sqlite.DB
		dir string
	}
	setup := func(t *testing.T) fixture {
		return fixture{db: storetest.NewSQLite(t, media.SQLiteSchema), dir: t.TempDir()}
	}
	notServed := func(t *testing.T, s *media.FileStore) {
		t.Helper()
		if _, err := s.Stat(ctx, id); !errors.Is(err, media.ErrNotFound) {
			t.Fatalf("stat: %v", err)
		}
		if _, err := s.Open(ctx, id); !errors.Is(err, media.ErrNotFound) {
			t.Fatalf("open: %v", err)
		}
	}
	served := func(t *testing.T, s *media.FileStore) {
		t.Helper()
		if b, _, err := s.ReadAll(ctx, id); err != nil || !bytes.Equal(b, data) {
			t.Fatalf("read back %d bytes, %v", len(b), err)
		}
	}

	t.Run("between the file and its row", func(t *testing.T) {
		f := setup(t)
		s := newFileStore(t, f.db, f.dir, 1<<20)
		media.SetAfterFile(s, func() error { return crash })
		if _, err := s.Put(ctx, bytes.NewReader(data), "image/png", ""); !errors.Is(err, crash) {
			t.Fatalf("put: %v", err)
		}
		if got := filesUnder(t, f.dir); len(got) != 1 || got[0] != filepath.Join(id[:2], id) {
			t.Fatalf("files after the crash: %v, want the placed file alone", got)
		}
		notServed(t, s)

		restarted := newFileStore(t, f.db, f.dir, 1<<20)
		notServed(t, restarted)
		if n, err := restarted.Sweep(ctx); err != nil || n != 1 {
			t.Fatalf("sweep removed %d, %v; want the orphan", n, err)
		}
		if got := filesUnder(t, f.dir); len(got) != 0 {
			t.Fatalf("files after the sweep: %v", got)
		}
		if n, err := restarted.Sweep(ctx); err != nil || n != 0 {
			t.Fatalf("second sweep removed %d, %v", n, err)
		}
	})

	t.Run("the next put of the same bytes completes it", func(t *testing.T) {
		f := setup(t)
		s := newFileStore(t, f.db, f.dir, 1<<20)
		media.SetAfterFile(s, func() error { return crash })
		if _, err := s.Put(ctx, bytes.NewReader(data), "image/png", ""); !errors.Is(err, crash) {
			t.Fatalf("put: %v", err)
		}
		restarted := newFileStore(t, f.db, f.dir, 1<<20)
		if _, err := restarted.Put(ctx, bytes.NewReader(data), "image/png", ""); err != nil {
			t.Fatal(err)
		}
		served(t, restarted)
		if n, err := restarted.Sweep(ctx); err != nil || n != 0 {
			t.Fatalf("sweep removed %d, %v; the file has its row now", n, err)
		}
		served(t, restarted)
	})

	t.Run("a half file under the final name is never served and is replaced", func(t *testing.T) {
		f := setup(t)
		if err := os.MkdirAll(filepath.Join(f.dir, id[:2]), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(f.dir, id[:2], id), data[:1000], 0o600); err != nil {
			t.Fatal(err)
		}
		s := newFileStore(t, f.db, f.dir, 1<<20)
		notServed(t, s)
		if _, err := s.Put(ctx, bytes.NewReader(data), "image/png", ""); err != nil {
			t.Fatal(err)
		}
		served(t, s)
	})

	t.Run("a half-written temporary file is never served and is swept", func(t *testing.T) {
		f := setup(t)
		tmp := filepath.Join(f.dir, ".put-12345")
		if err := os.WriteFile(tmp, data[:1000], 0o600); err != nil {
			t.Fatal(err)
		}
		old := time.Now().Add(-time.Hour)
		if err := os.Chtimes(tmp, old, old); err != nil {
			t.Fatal(err)
		}
		s := newFileStore(t, f.db, f.dir, 1<<20)
		notServed(t, s)
		if _, err := s.Stat(ctx, sum(data[:1000])); !errors.Is(err, media.ErrNotFound) {
			t.Fatalf("stat of the partial bytes: %v", err)
		}
		if n, err := s.Sweep(ctx); err != nil || n != 1 {
			t.Fatalf("sweep removed %d, %v", n, err)
		}
		if got := filesUnder(t, f.dir); len(got) != 0 {
			t.Fatalf("files after the sweep: %v", got)
		}
	})

	t.Run("sweep leaves a running put alone", func(t *testing.T) {
		f := setup(t)
		s := newFileStore(t, f.db, f.dir, 1<<20)
		pr, pw := io.Pipe()
		done := make(chan error, 1)
		go func() {
			_, err := s.Put(ctx, pr, "image/png", "")
			done <- err
		}()
		if _, err := pw.Write(data[:1000]); err != nil { // the put is spooling now
			t.Fatal(err)
		}
		if n, err := s.Sweep(ctx); err != nil || n != 0 {
			t.Fatalf("sweep removed %d, %v, during a put", n, err)
		}
		if _, err := pw.Write(data[1000:]); err != nil {
			t.Fatal(err)
		}
		pw.Close()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		served(t, s)
	})

	t.Run("a row whose file was cut short is not served", func(t *testing.T) {
		f := setup(t)
		s := newFileStore(t, f.db, f.dir, 1<<20)
		if _, err := s.Put(ctx, bytes.NewReader(data), "image/png", ""); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(filepath.Join(f.dir, id[:2], id), 1000); err != nil {
			t.Fatal(err)
		}
		if r, err := s.Open(ctx, id); err == nil {
			r.Close()
			t.Fatal("opened a file shorter than its row")
		}
	})
}
