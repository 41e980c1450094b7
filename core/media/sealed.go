package media

// Encryption at rest for media (package sealing). A Sealed store keeps the
// bytes of every new file sealed in fixed-size chunks (a range request
// decrypts only the chunks it covers) on the engine beneath it, files
// under data_dir/media or GridFS chunks alike, and its file name sealed
// too. A new file's id is the HMAC-SHA256 of its bytes under a subkey of
// the active key rather than their SHA-256: the same bytes still get the
// same id, but an id no longer tells someone without the key whether a
// known file is stored. The SHA-256 the API reports is sealed inside the
// file.
//
// Files stored before encryption was on keep their ids (their SHA-256) and
// are served as they are until Reencrypt seals their bytes in place.

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/wildcathub/wildcat/core/sealing"
)

// engine is what a Sealed store needs of the engine beneath it (FileStore,
// GridFS) besides Store.
type engine interface {
	Store
	// putAs stores the bytes r yields under the id id returns once r is
	// read to its end. An id already stored is kept as it is unless
	// replace, which rewrites its bytes and keeps its metadata.
	putAs(ctx context.Context, r io.Reader, id func() string, mimetype, filename string, replace bool) (*Info, error)
	// setFilename replaces a stored file's name.
	setFilename(ctx context.Context, id, filename string) error
	// maySeal reports whether the file in describes may hold sealed bytes;
	// false means plaintext for sure, and Stat need not read the file.
	maySeal(in *Info) bool
}

var (
	_ engine = (*FileStore)(nil)
	_ engine = (*GridFS)(nil)
)

// Sealed returns s (a FileStore or a GridFS) sealing what it stores with
// keys; with keys nil (encryption off) it stores plaintext as s does, and
// sealed files cannot be read.
func Sealed(s Store, keys *sealing.Keyring) (Store, error) {
	e, ok := s.(engine)
	if !ok {
		return nil, fmt.Errorf("media: %T cannot seal", s)
	}
	return &SealedStore{e: e, keys: keys}, nil
}

// SealedStore is the Store Sealed returns.
type SealedStore struct {
	e    engine
	keys *sealing.Keyring
}

var _ Store = (*SealedStore)(nil)

// MaxBytes implements Store: the bound is on the plaintext.
func (s *SealedStore) MaxBytes() int64 { return s.e.MaxBytes() }

// Put implements Store.
func (s *SealedStore) Put(ctx context.Context, r io.Reader, mimetype, filename string) (*Info, error) {
	if !s.keys.Enabled() {
		return s.e.Put(ctx, r, mimetype, filename)
	}
	fn, err := s.keys.SealString(filename)
	if err != nil {
		return nil, err
	}
	var id string
	pr := s.sealing(r, &id)
	defer pr.Close() // ends the sealing goroutine if putAs stopped reading early
	in, err := s.e.putAs(ctx, pr, func() string { return id }, mimetype, fn, false)
	if err != nil {
		return nil, err
	}
	return s.Stat(ctx, in.ID)
}

// sealing is r's bytes sealed; once it has been read to its end *id holds
// their content address. Reading fails with a *TooLargeError beyond
// MaxBytes.
func (s *SealedStore) sealing(r io.Reader, id *string) *io.PipeReader {
	pr, pw := io.Pipe()
	go func() {
		fw, err := s.keys.NewFileWriter(pw)
		if err != nil {
			pw.CloseWithError(err)
			return
		}
		mac := s.keys.AddressHash()
		max := s.e.MaxBytes()
		n, err := io.Copy(io.MultiWriter(fw, mac), io.LimitReader(r, max+1))
		switch {
		case err != nil:
		case n > max:
			err = &TooLargeError{Limit: max}
		default:
			err = fw.Close()
		}
		if err != nil {
			pw.CloseWithError(err)
			return
		}
		*id = hex.EncodeToString(mac.Sum(nil))
		pw.Close() // the reader sees EOF after *id is set
	}()
	return pr
}

// Stat implements Store. A sealed file's size and SHA-256 are its
// plaintext's, read from the file.
func (s *SealedStore) Stat(ctx context.Context, id string) (*Info, error) {
	in, err := s.e.Stat(ctx, id)
	if err != nil || !s.e.maySeal(in) {
		return in, err
	}
	rd, err := s.Open(ctx, id)
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	return rd.Info, nil
}

// Open implements Store.
func (s *SealedStore) Open(ctx context.Context, id string) (*Reader, error) {
	rd, err := s.e.Open(ctx, id)
	if err != nil {
		return nil, err
	}
	out, err := s.open(rd)
	if err != nil {
		rd.Close()
		return nil, fmt.Errorf("open media %s: %w", id, err)
	}
	return out, nil
}

// open reads the engine's file rd: sealed, or plaintext stored before
// encryption was on (served as it is).
func (s *SealedStore) open(rd *Reader) (*Reader, error) {
	ra := &seekReaderAt{rs: rd.rs}
	head := make([]byte, 5)
	n, err := ra.ReadAt(head, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if !sealing.IsSealedFile(head[:n]) {
		if _, err := rd.Seek(0, io.SeekStart); err != nil {
			return nil, err
		}
		return rd, nil
	}
	fr, err := s.keys.OpenFile(ra, rd.Info.Size)
	if err != nil {
		return nil, err
	}
	in := *rd.Info
	in.Size, in.SHA256 = fr.Size(), hex.EncodeToString(fr.SHA256())
	if in.Filename, err = s.keys.OpenString(in.Filename); err != nil {
		return nil, fmt.Errorf("file name: %w", err)
	}
	return &Reader{Info: &in, rs: fr, closer: rd}, nil
}

// ReadAll implements Store.
func (s *SealedStore) ReadAll(ctx context.Context, id string) ([]byte, *Info, error) {
	return readAll(s.Open(ctx, id))
}

// Delete implements Store.
func (s *SealedStore) Delete(ctx context.Context, id string) error { return s.e.Delete(ctx, id) }

// List implements Store; each file is opened for its plaintext's size and
// SHA-256.
func (s *SealedStore) List(ctx context.Context, after string, limit int) ([]*Info, error) {
	ins, err := s.e.List(ctx, after, limit)
	if err != nil {
		return nil, err
	}
	out := ins[:0]
	for _, in := range ins {
		got, err := s.Stat(ctx, in.ID)
		if errors.Is(err, ErrNotFound) {
			continue // deleted since listed
		}
		if err != nil {
			return nil, err
		}
		out = append(out, got)
	}
	return out, nil
}

// Count implements Store.
func (s *SealedStore) Count(ctx context.Context) (int64, error) { return s.e.Count(ctx) }

// Sweep implements Store.
func (s *SealedStore) Sweep(ctx context.Context) (int, error) { return s.e.Sweep(ctx) }

// Reencrypt seals under the active key, in place and under the same ids,
// every file that is not: plaintext stored before encryption was on and
// files sealed under an older key. It reports how many it rewrote. Meant
// for a store no daemon is serving: a reader meeting a file while it is
// rewritten fails.
func (s *SealedStore) Reencrypt(ctx context.Context) (int, error) {
	if !s.keys.Enabled() {
		return 0, errors.New("reencrypt media: encryption is off (configure a key)")
	}
	n := 0
	after := ""
	for {
		ins, err := s.e.List(ctx, after, 100)
		if err != nil {
			return n, fmt.Errorf("reencrypt media: %w", err)
		}
		if len(ins) == 0 {
			return n, nil
		}
		for _, in := range ins {
			done, err := s.reseal(ctx, in.ID)
			if err != nil {
				return n, fmt.Errorf("reencrypt media %s: %w", in.ID, err)
			}
			if done {
				n++
			}
		}
		after = ins[len(ins)-1].ID
	}
}

func (s *SealedStore) reseal(ctx context.Context, id string) (bool, error) {
	raw, err := s.e.Open(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer raw.Close()
	fn := raw.Info.Filename
	rd, err := s.open(raw)
	if err != nil {
		return false, err
	}
	if fr, ok := rd.rs.(*sealing.FileReader); ok && fr.KeyID() == s.keys.ActiveID() && !s.keys.StaleString(fn) {
		return false, nil
	}
	// The metadata is kept by putAs, so the file name is re-sealed apart.
	var newID string
	pr := s.sealing(rd, &newID)
	defer pr.Close()
	if _, err := s.e.putAs(ctx, pr, func() string { return id }, rd.Info.Mimetype, "", true); err != nil {
		return false, err
	}
	if s.keys.StaleString(fn) {
		sealed, err := s.keys.SealString(rd.Info.Filename)
		if err != nil {
			return false, err
		}
		if err := s.e.setFilename(ctx, id, sealed); err != nil {
			return false, err
		}
	}
	return true, nil
}

// seekReaderAt reads at offsets of an io.ReadSeeker (one read at a time).
type seekReaderAt struct {
	mu sync.Mutex
	rs io.ReadSeeker
}

func (r *seekReaderAt) ReadAt(p []byte, off int64) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := r.rs.Seek(off, io.SeekStart); err != nil {
		return 0, err
	}
	n, err := io.ReadFull(r.rs, p)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = io.EOF
	}
	return n, err
}
