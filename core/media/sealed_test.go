package media_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/wildcathub/wildcat/core/media"
	"github.com/wildcathub/wildcat/core/sealing"
	"github.com/wildcathub/wildcat/core/sealing/sealtest"
	"github.com/wildcathub/wildcat/core/store/storetest"
)

// markedMedia is n bytes with a marker every 10,000 bytes, so any stored
// run of plaintext longer than that shows.
func markedMedia(n int) []byte {
	b := pattern(n, 9)
	for i := 0; i+16 < n; i += 10_000 {
		copy(b[i:], "MEDIAMARK-51b7e2")
	}
	return b
}

type sealedEnv struct {
	raw  media.Store // the engine beneath
	dump func() []byte
	dir  string // the file store's directory
}

func newSealedEnv(t *testing.T, e storetest.Engine) sealedEnv {
	t.Helper()
	if e == storetest.SQLite {
		db := storetest.NewSQLite(t, media.SQLiteSchema)
		s := newFileStore(t, db, t.TempDir(), 1<<20)
		return sealedEnv{raw: s, dir: s.Dir(), dump: func() []byte {
			// Rows overwritten stay in free pages until vacuumed (the
			// reencrypt command does).
			if err := db.Vacuum(context.Background()); err != nil {
				t.Fatal(err)
			}
			return append(sealtest.DirBytes(t, s.Dir()), sealtest.SQLiteBytes(t, db.Path())...)
		}}
	}
	db := storetest.NewDatabase(t)
	return sealedEnv{raw: media.NewGridFS(db, 1<<20), dump: func() []byte { return sealtest.MongoBytes(t, db) }}
}

func (v sealedEnv) with(t *testing.T, keys *sealing.Keyring) media.Store {
	t.Helper()
	s, err := media.Sealed(v.raw, keys)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func readBack(t *testing.T, s media.Store, id string, want []byte) {
	t.Helper()
	got, in, err := s.ReadAll(context.Background(), id)
	if err != nil {
		t.Fatalf("read %s: %v", id, err)
	}
	if !bytes.Equal(got, want) || in.Size != int64(len(want)) || in.SHA256 != sum(want) {
		t.Fatalf("read %s: %d bytes, info %+v; want %d bytes, sha256 %s", id, len(got), in, len(want), sum(want))
	}
}

// TestSealedMedia: with encryption on the engine's bytes (files and their
// rows, GridFS chunks and files) hold neither the media's bytes nor its
// file name, and its id is not its SHA-256; ranges still work; rotation and
// Reencrypt keep every file readable under its id; media stored before
// encryption is served and then sealed; a missing key or altered bytes
// fail.
func TestSealedMedia(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) {
		ctx := context.Background()
		v := newSealedEnv(t, e)
		k1, k2 := sealtest.Key(t, "k1"), sealtest.Key(t, "k2")

		// Stored before encryption was on.
		oldData := markedMedia(150_000)
		old, err := v.with(t, nil).Put(ctx, bytes.NewReader(oldData), "image/png", "OLDNAMEMARK.png")
		if err != nil {
			t.Fatal(err)
		}
		sealtest.HasPlaintext(t, "before encryption", v.dump(), "MEDIAMARK-51b7e2", "OLDNAMEMARK")

		// On with k1.
		s1 := v.with(t, sealtest.Ring(t, "", k1))
		data := markedMedia(3*sealing.ChunkSize + 1234)
		in, err := s1.Put(ctx, bytes.NewReader(data), "video/mp4", "NEWNAMEMARK.mp4")
		if err != nil {
			t.Fatal(err)
		}
		if in.ID == sum(data) || in.SHA256 != sum(data) || in.Size != int64(len(data)) || in.Filename != "NEWNAMEMARK.mp4" {
			t.Fatalf("put answered %+v", in)
		}
		again, err := s1.Put(ctx, bytes.NewReader(data), "video/mp4", "other.mp4")
		if err != nil || again.ID != in.ID {
			t.Fatalf("the same bytes again: %+v, %v", again, err)
		}
		if n, _ := s1.Count(ctx); n != 2 {
			t.Fatalf("%d files, want 2", n)
		}
		// Only the old file's bytes are in the clear.
		dump := v.dump()
		if bytes.Count(dump, []byte("MEDIAMARK-51b7e2")) != bytes.Count(oldData, []byte("MEDIAMARK-51b7e2")) {
			t.Errorf("sealed media bytes are in the store in the clear")
		}
		sealtest.NoPlaintext(t, "after a sealed put", dump, "NEWNAMEMARK")
		readBack(t, s1, in.ID, data)
		readBack(t, s1, old.ID, oldData)

		// A range across a sealing chunk boundary, as GET /v1/media serves it.
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			r, err := s1.Open(req.Context(), in.ID)
			if err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			defer r.Close()
			http.ServeContent(w, req, "", r.Info.Uploaded, r)
		}))
		defer srv.Close()
		from, to := int64(2*sealing.ChunkSize-3), int64(2*sealing.ChunkSize+2)
		req, _ := http.NewRequest("GET", srv.URL, nil)
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", from, to))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, data[from:to+1]) ||
			resp.Header.Get("Content-Range") != fmt.Sprintf("bytes %d-%d/%d", from, to, len(data)) {
			t.Fatalf("range: %d %q, %d bytes", resp.StatusCode, resp.Header.Get("Content-Range"), len(body))
		}

		// Rotation: k2 active; k1's file still reads.
		s12 := v.with(t, sealtest.Ring(t, "k2", k1, k2))
		readBack(t, s12, in.ID, data)
		n, err := s12.(*media.SealedStore).Reencrypt(ctx)
		if err != nil || n != 2 {
			t.Fatalf("Reencrypt = %d, %v; want 2", n, err)
		}
		if n, err := s12.(*media.SealedStore).Reencrypt(ctx); err != nil || n != 0 {
			t.Fatalf("second Reencrypt = %d, %v", n, err)
		}
		sealtest.NoPlaintext(t, "after reencrypt", v.dump(), "MEDIAMARK-51b7e2", "OLDNAMEMARK", "NEWNAMEMARK")
		// k1 can go; ids are kept.
		s2 := v.with(t, sealtest.Ring(t, "", k2))
		readBack(t, s2, in.ID, data)
		readBack(t, s2, old.ID, oldData)
		if st, err := s2.Stat(ctx, old.ID); err != nil || st.Filename != "OLDNAMEMARK.png" || st.Mimetype != "image/png" {
			t.Fatalf("old file's metadata after reencrypt: %+v, %v", st, err)
		}
		// Without the key: an error naming it.
		if _, err := v.with(t, sealtest.Ring(t, "", k1)).Open(ctx, in.ID); !errors.Is(err, sealing.ErrUnknownKey) {
			t.Fatalf("open without k2: %v", err)
		}
		if _, _, err := v.with(t, nil).ReadAll(ctx, in.ID); !errors.Is(err, sealing.ErrUnknownKey) {
			t.Fatalf("read with encryption off: %v", err)
		}
		// Altered bytes fail; they are never served.
		if v.dir != "" {
			p := filepath.Join(v.dir, in.ID[:2], in.ID)
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			b[len(b)/2] ^= 1
			if err := os.WriteFile(p, b, 0o600); err != nil {
				t.Fatal(err)
			}
			if _, _, err := s2.ReadAll(ctx, in.ID); !errors.Is(err, sealing.ErrAuth) {
				t.Fatalf("altered file: %v", err)
			}
		}
	})
}
