package daemon

import (
	"log/slog"
	"os"

	"github.com/wildcathub/wildcat/core/config"
	"github.com/wildcathub/wildcat/core/configcheck"
)

// buildSealing reads the encryption keys and makes the stores that keep
// content seal it (README: Encryption at rest). With no key configured
// nothing is sealed, and values sealed earlier cannot be read.
func (d *Daemon) buildSealing(cfg config.Config) error {
	keys, err := configcheck.Keyring(&cfg)
	if err != nil {
		return err
	}
	d.keys = keys
	d.messages.Seal(keys)
	if keys.Enabled() {
		d.log.Info("encryption at rest on", slog.String("active_key", keys.ActiveID()), slog.Any("keys", keys.IDs()))
	}
	if f := cfg.Encryption.KeyFile; f != "" {
		if fi, err := os.Stat(f); err == nil && fi.Mode().Perm()&0o077 != 0 {
			d.log.Warn("encryption key file is readable by others than its owner; chmod 600 it",
				slog.String("key_file", f), slog.String("mode", fi.Mode().Perm().String()))
		}
	}
	return nil
}
