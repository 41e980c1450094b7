package api

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
)

// certReloader serves the certificate of a cert/key file pair and reads
// the files again when either changes (a renewed certificate is picked up
// without a restart). A pair that does not load keeps the previous one.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger

	mu    sync.Mutex
	cert  *tls.Certificate
	stamp string // the files' mtimes and sizes when cert was read
	bad   string // the stamp of files that did not load (warned once)
}

func newCertReloader(certFile, keyFile string, log *slog.Logger) (*certReloader, error) {
	c := &certReloader{certFile: certFile, keyFile: keyFile, log: log}
	if _, err := c.get(nil); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *certReloader) fileStamp() (string, error) {
	var s string
	for _, f := range []string{c.certFile, c.keyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			return "", err
		}
		s += fmt.Sprintf("%d/%d;", fi.ModTime().UnixNano(), fi.Size())
	}
	return s, nil
}

// get is tls.Config.GetCertificate: one stat per file per handshake.
func (c *certReloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	stamp, err := c.fileStamp()
	if err == nil && (stamp == c.stamp || stamp == c.bad) {
		return c.cert, nil
	}
	if err == nil {
		var cert tls.Certificate
		cert, err = tls.LoadX509KeyPair(c.certFile, c.keyFile)
		if err == nil {
			if c.cert != nil {
				c.log.Info("tls certificate reloaded", slog.String("cert_file", c.certFile))
			}
			c.cert, c.stamp = &cert, stamp
			return c.cert, nil
		}
	}
	if c.cert == nil {
		return nil, fmt.Errorf("load TLS certificate %s and key %s: %w", c.certFile, c.keyFile, err)
	}
	// Half-written during a renewal, most likely: keep serving the old one
	// until the files change again.
	c.bad = stamp
	c.log.Warn("tls certificate not reloaded; serving the previous one", slog.Any("error", err))
	return c.cert, nil
}

func (c *certReloader) config() *tls.Config {
	return &tls.Config{GetCertificate: c.get, MinVersion: tls.VersionTLS12}
}
