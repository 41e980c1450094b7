package sdk

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"time"
)

// TLSEnv carries the mutual TLS identities a daemon made for one plugin
// process: PEM blocks of the plugin's certificate, its private key and the
// daemon's certificate, in that order. Serve reads it (and removes it from
// the environment, so the key is not inherited by a process the plugin
// starts) and serves TLS with that identity, accepting only the daemon's.
//
// Why not go-plugin's AutoMTLS: it makes both certificates on P-521, whose
// first key generation builds a 0.5 MB table of precomputed points that the
// process keeps for its life — a third of an idle plugin's live heap, and as
// much again in the daemon. The certificates made here are P-256 (whose
// table is built into the binary, not onto the heap), with the same trust:
// each side accepts only the other's certificate, and the environment that
// carries the key is readable only by the user both processes run as (who
// could read either process's memory anyway). A daemon that does not set
// TLSEnv gets AutoMTLS as before, and a plugin built with an older SDK
// answers the daemon's certificate in PLUGIN_CLIENT_CERT (HostTLS) with its
// own AutoMTLS one.
const TLSEnv = "WILDCAT_PLUGIN_TLS"

// HostTLS makes the TLS identities for one start of a plugin process. It
// returns the value of TLSEnv for the plugin's environment, the daemon's
// certificate (PEM) for go-plugin's PLUGIN_CLIENT_CERT, and the daemon's
// side of the connection for plugin.ClientConfig.TLSConfig (go-plugin
// replaces its trusted certificate with the plugin's when a plugin answers
// with AutoMTLS).
func HostTLS() (env, hostCertPEM string, cfg *tls.Config, err error) {
	host, hostPEM, err := selfSigned()
	if err != nil {
		return "", "", nil, fmt.Errorf("plugin TLS: daemon certificate: %w", err)
	}
	plug, plugPEM, err := selfSigned()
	if err != nil {
		return "", "", nil, fmt.Errorf("plugin TLS: plugin certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(plug.PrivateKey)
	if err != nil {
		return "", "", nil, fmt.Errorf("plugin TLS: %w", err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	env = string(plugPEM) + string(keyPEM) + string(hostPEM)
	return env, string(hostPEM), mutualTLS(host, plug.Leaf), nil
}

// pluginTLS is the plugin's side of the identities in env (TLSEnv's value).
func pluginTLS(env string) (*tls.Config, error) {
	var blocks []*pem.Block
	rest := []byte(env)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		blocks = append(blocks, b)
	}
	if len(blocks) != 3 || blocks[0].Type != "CERTIFICATE" || blocks[1].Type != "PRIVATE KEY" || blocks[2].Type != "CERTIFICATE" {
		return nil, errors.New(TLSEnv + ": want the plugin's certificate, its private key and the daemon's certificate, as PEM")
	}
	own, err := tls.X509KeyPair(pem.EncodeToMemory(blocks[0]), pem.EncodeToMemory(blocks[1]))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", TLSEnv, err)
	}
	daemon, err := x509.ParseCertificate(blocks[2].Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: daemon certificate: %w", TLSEnv, err)
	}
	return mutualTLS(own, daemon), nil
}

// daemonTLS is Serve's TLS provider when the daemon set TLSEnv, nil when
// it did not (go-plugin's AutoMTLS then, as with older daemons).
func daemonTLS() (func() (*tls.Config, error), error) {
	env, ok := os.LookupEnv(TLSEnv)
	if !ok {
		return nil, nil
	}
	_ = os.Unsetenv(TLSEnv)
	cfg, err := pluginTLS(env)
	if err != nil {
		return nil, err
	}
	return func() (*tls.Config, error) { return cfg, nil }, nil
}

// mutualTLS is one side's configuration: its own certificate, and the
// peer's as the only one trusted, whether this side dials (the daemon
// calling the plugin, the plugin calling host services through the broker)
// or accepts. go-plugin's certificates name "localhost"; these do too.
func mutualTLS(own tls.Certificate, peer *x509.Certificate) *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(peer)
	return &tls.Config{
		Certificates: []tls.Certificate{own},
		RootCAs:      pool,
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ServerName:   "localhost",
		MinVersion:   tls.VersionTLS12,
	}
}

// selfSigned makes a P-256 certificate for "localhost" that is its own
// issuer, usable by a client and a server, valid as long as go-plugin's.
func selfSigned() (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "localhost", Organization: []string{"Wildcat"}},
		DNSNames:              []string{"localhost"},
		NotBefore:             now.Add(-30 * time.Second),
		NotAfter:              now.Add(262980 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
	return cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}
