package main

import (
	"context"
	"encoding/hex"
	"errors"
	"io"
	"sync"

	"github.com/wildcathub/wildcat/core/s3media"
)

// s3Locks serialise the check-then-upload of one SHA-256 in this process:
// jobs of messages with the same bytes running at once (a forwarded video
// arriving on several accounts) upload it once, the others find it.
var s3Locks [64]sync.Mutex

func s3Lock(sum string) *sync.Mutex {
	b, err := hex.DecodeString(sum[:2])
	if err != nil || len(b) == 0 {
		return &s3Locks[0]
	}
	return &s3Locks[int(b[0])%len(s3Locks)]
}

// presentS3 reports whether the s3 target holds the bytes of sum; a found
// object's retention clock is set to now (a newer message references it),
// as the dir target touches its file.
func (a *Archive) presentS3(ctx context.Context, sum string) (bool, error) {
	b := a.s3()
	if b == nil {
		return false, errors.New("s3 target not configured")
	}
	mu := s3Lock(sum)
	mu.Lock()
	defer mu.Unlock()
	o, err := b.Stat(ctx, sum)
	if errors.Is(err, s3media.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := b.Touch(ctx, o, a.now()); err != nil {
		return false, err
	}
	return true, nil
}

// putS3 stores the spooled bytes in the s3 target: a HEAD first, and an
// upload only when the object is absent (content-addressed keys: present
// means these very bytes), else a touch.
func (a *Archive) putS3(ctx context.Context, sp *spooled, mimetype, filename string) error {
	b := a.s3()
	if b == nil {
		return errors.New("s3 target not configured")
	}
	mu := s3Lock(sp.sha256)
	mu.Lock()
	defer mu.Unlock()
	o, err := b.Stat(ctx, sp.sha256)
	if err == nil {
		return b.Touch(ctx, o, a.now())
	}
	if !errors.Is(err, s3media.ErrNotFound) {
		return err
	}
	if _, err := sp.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	return b.Put(ctx, sp.sha256, sp.f, sp.size, mimetype, filename, a.now())
}

// sweepS3 deletes the s3 target's objects not referenced since before
// retention_days ago (by the archive's clock): the dir target's rule.
func (a *Archive) sweepS3(ctx context.Context) (int, error) {
	cfg, b := a.config(), a.s3()
	if b == nil || !cfg.has(TargetS3) || cfg.RetentionDays <= 0 {
		return 0, nil
	}
	return b.Sweep(ctx, a.now().Add(-retention(cfg)))
}
