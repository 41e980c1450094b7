package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/wildcathub/wildcat/core/config"
	"github.com/wildcathub/wildcat/core/media"
)

// MediaDir holds the embedded engine's media files under data_dir.
const MediaDir = "media"

// buildMedia opens the media store: files under data_dir/media with their
// rows in the embedded database, or GridFS on MongoDB.
func (d *Daemon) buildMedia(cfg config.Config) error {
	var s media.Store
	if d.sql == nil {
		s = media.NewGridFS(d.store.DB(), cfg.Media.MaxBytes)
	} else {
		fs, err := media.NewFileStore(d.sql, filepath.Join(cfg.DataDir, MediaDir), cfg.Media.MaxBytes)
		if err != nil {
			return fmt.Errorf("media: %w", err)
		}
		s = fs
	}
	// Sealed when encryption is on (sealing.go).
	sealed, err := media.Sealed(s, d.keys)
	if err != nil {
		return fmt.Errorf("media: %w", err)
	}
	d.media = sealed
	return d.buildServedMedia(cfg)
}

// sweepMedia removes, once at start, what a crash left of interrupted
// uploads and deletions (never a servable file).
func (d *Daemon) sweepMedia(ctx context.Context) {
	n, err := d.media.Sweep(ctx)
	if err != nil && ctx.Err() == nil {
		d.log.Warn("media sweep failed", slog.Any("error", err))
	} else if n > 0 {
		d.log.Info("leftovers of interrupted media writes removed", slog.Int("count", n))
	}
}
