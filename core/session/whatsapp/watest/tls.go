package watest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"
)

// TLSFront serves the double over TLS under WhatsApp's host names
// (web.whatsapp.com, *.whatsapp.net), with a certificate of its own, on an
// address of its own: for tests that reach the double as a client reaches
// WhatsApp — through a proxy that dials Addr, say — rather than through
// HTTPClient's redirection.
type TLSFront struct {
	srv *httptest.Server
	// ClientTLS trusts the front's certificate.
	ClientTLS *tls.Config
	allow     func(remote string) bool

	mu      sync.Mutex
	refused []string
}

// ServeTLS starts a TLS front, stopped when the test ends. allow, when
// set, decides by a connection's remote address whether its requests are
// served: the others are answered 403 and listed by Refused.
func (s *Server) ServeTLS(allow func(remote string) bool) *TLSFront {
	s.tb.Helper()
	cert, pool, err := whatsAppCert()
	if err != nil {
		s.tb.Fatalf("watest: %v", err)
	}
	f := &TLSFront{ClientTLS: &tls.Config{RootCAs: pool}, allow: allow}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.allow != nil && !f.allow(r.RemoteAddr) {
			f.mu.Lock()
			f.refused = append(f.refused, r.Host+r.URL.Path)
			f.mu.Unlock()
			http.Error(w, "watest: connection refused by the test", http.StatusForbidden)
			return
		}
		s.mux.ServeHTTP(w, r)
	}))
	f.srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	f.srv.StartTLS()
	s.tb.Cleanup(f.srv.Close)
	return f
}

// Addr is the front's listening address.
func (f *TLSFront) Addr() string { return f.srv.Listener.Addr().String() }

// Refused lists the requests allow refused (host and path).
func (f *TLSFront) Refused() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.refused...)
}

// whatsAppCert is a self-signed certificate for WhatsApp's host names.
func whatsAppCert() (tls.Certificate, *x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "watest"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: []string{"web.whatsapp.com", "*.whatsapp.net"},
		IsCA:     true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool, nil
}
