package daemon

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"os"
	"reflect"
	"time"

	"github.com/wildcathub/wildcat/core/config"
	"github.com/wildcathub/wildcat/core/configcheck"
	"github.com/wildcathub/wildcat/core/pipeline"
)

// ErrNoConfigSource: the daemon was started without a way to re-read its
// configuration (Options.LoadConfig), so a reload needs the stages given.
var ErrNoConfigSource = errors.New("the daemon has no configuration source to re-read")

// ConfigWatchInterval is how often the configuration file is checked for
// changes; a change is applied once the file has been stable for one
// interval, so an editor's save in several writes is read once.
var ConfigWatchInterval = time.Second

// ReloadConfig re-reads the configuration and applies what can change while
// the daemon runs: the pipeline (events in flight finish on the stages they
// started with). A file that does not load or whose pipeline does not
// compile changes nothing and returns the error (a *config.Error naming the
// key). Other changed keys are logged as waiting for a restart.
func (d *Daemon) ReloadConfig(ctx context.Context) error {
	if d.opts.LoadConfig == nil {
		return ErrNoConfigSource
	}
	cfg, err := d.opts.LoadConfig()
	if err != nil {
		return err
	}
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	if !reflect.DeepEqual(withoutPipeline(cfg), withoutPipeline(d.cfg)) {
		d.log.Warn("configuration changed beyond the pipeline; those changes take effect at the next start")
	}
	if reflect.DeepEqual(cfg.Pipeline, d.engine.Stages()) {
		d.log.Info("configuration re-read; pipeline unchanged")
		return nil
	}
	if err := configcheck.Pipeline(&cfg, d.registry); err != nil {
		return err
	}
	if err := d.engine.Reload(cfg.Pipeline); err != nil {
		var se *pipeline.StageError
		if errors.As(err, &se) {
			return &config.Error{Key: "pipeline", Problem: se.Error()}
		}
		return err
	}
	d.log.Info("pipeline reloaded from the configuration", slog.Int("stages", len(cfg.Pipeline)))
	return nil
}

func withoutPipeline(c config.Config) config.Config {
	c.Pipeline = nil
	return c
}

// watchConfig re-reads the configuration when ConfigFile changes. It
// compares contents, not modification times, so touching the file or
// rewriting it unchanged does nothing.
func (d *Daemon) watchConfig(ctx context.Context) {
	path := d.opts.ConfigFile
	read := func() []byte {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil // a file being replaced; try again next tick
		}
		sum := sha256.Sum256(b)
		return sum[:]
	}
	applied := read()
	var pending []byte
	every(ConfigWatchInterval, func(ctx context.Context) {
		cur := read()
		if cur == nil || bytes.Equal(cur, applied) {
			pending = nil
			return
		}
		if !bytes.Equal(cur, pending) {
			pending = cur // changed: wait one more tick for it to settle
			return
		}
		applied, pending = cur, nil
		d.log.Info("configuration file changed", slog.String("path", path))
		if err := d.ReloadConfig(ctx); err != nil {
			d.log.Error("configuration file not applied; the running pipeline is unchanged", slog.Any("error", err))
		}
	})(ctx)
}
