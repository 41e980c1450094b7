// Package dashboard holds the web dashboard the daemon serves under /ui:
// static HTML, CSS and ES modules embedded in the binary. The pages talk to
// the REST API with the key the user types in; the files themselves hold
// no data, so they are served without a key (core/api still applies its
// Host/Origin guard to them).
package dashboard

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

//go:embed static
var static embed.FS

// Prefix is where the dashboard is mounted.
const Prefix = "/ui"

// csp allows nothing but this origin: no inline script or style, no CDN.
// Images and media may be blob: URLs (QR codes and media previews are
// fetched with the key, then shown from memory).
const csp = "default-src 'self'; img-src 'self' blob:; media-src 'self' blob:; object-src 'none'; " +
	"base-uri 'none'; frame-ancestors 'none'; form-action 'none'"

// Handler serves the dashboard's files under Prefix.
func Handler() http.Handler {
	root, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.FileServer(http.FS(root))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		// The files change with the binary; revalidate so an upgrade shows.
		h.Set("Cache-Control", "no-cache")
		if r.URL.Path == Prefix {
			http.Redirect(w, r, Prefix+"/", http.StatusMovedPermanently)
			return
		}
		name := strings.TrimPrefix(r.URL.Path, Prefix)
		if strings.HasSuffix(name, "/") && name != "/" {
			http.NotFound(w, r) // no directory listings
			return
		}
		r2 := r.Clone(r.Context())
		r2.URL.Path = name
		files.ServeHTTP(w, r2)
	})
}
