package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/wildcathub/wildcat/core/api"
	"github.com/wildcathub/wildcat/core/apikeys"
	"github.com/wildcathub/wildcat/core/config"
)

// buildKeys opens the API keys' keyring when http.auth is on (nil when
// off). The HMAC secret comes from http.auth_secret or
// data_dir/server.secret, never from the database.
func (d *Daemon) buildKeys(cfg config.Config) error {
	if !cfg.HTTP.Auth {
		d.log.Warn("API authentication is off (http.auth: false): anyone who can reach the API can use it", slog.String("addr", cfg.HTTP.Addr))
		return nil
	}
	secret, err := apikeys.LoadSecret(cfg.HTTP.AuthSecret, filepath.Join(cfg.DataDir, apikeys.SecretFile))
	if err != nil {
		return err
	}
	var st apikeys.Store
	if d.sql != nil {
		// This daemon holds the database file locked: every change to a key
		// goes through it, so reads can come from memory.
		st = apikeys.Cached(apikeys.NewSQLite(d.sql))
	} else {
		st = apikeys.NewMongo(d.store.DB())
	}
	d.apiKeys = apikeys.NewKeyring(st, secret, nil)
	return nil
}

// apiKeys is the keyring as the API takes it: a nil interface when
// authentication is off.
func (d *Daemon) apiKeyring() api.Keys {
	if d.apiKeys == nil {
		return nil
	}
	return d.apiKeys
}

// metricsOpen: /metrics without a key on loopback unless configured.
func metricsOpen(h config.HTTP) bool {
	switch h.MetricsAuth {
	case "open":
		return true
	case "key":
		return false
	}
	return config.IsLoopback(h.Addr)
}

// bootstrapKey creates the first admin key when there is none: its token
// goes to data_dir/admin.key and, once, to the console.
func (d *Daemon) bootstrapKey(ctx context.Context) error {
	if d.apiKeys == nil {
		return nil
	}
	file := filepath.Join(d.cfg.DataDir, apikeys.AdminKeyFile)
	tok, err := d.apiKeys.Bootstrap(ctx, file, d.cfg.HTTP.AdminKey)
	if err != nil || tok == "" {
		return err
	}
	if d.cfg.HTTP.AdminKey != "" {
		d.log.Info("created the first admin API key from http.admin_key", slog.String("key_id", apikeys.ID(tok)), slog.String("file", file))
		return nil
	}
	d.log.Warn("created the first admin API key; it is shown once and kept in the file for scripts",
		slog.String("key_id", apikeys.ID(tok)), slog.String("file", file))
	if d.opts.Console != nil {
		fmt.Fprintf(d.opts.Console, "\n=== wildcatd: admin API key (shown once; also in %s) ===\n%s\n=== send it as: Authorization: Bearer <key> ===\n\n", file, tok)
	}
	return nil
}
