package daemon

import (
	"log/slog"

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
	return nil
}
