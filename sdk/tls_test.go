package sdk

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"encoding/pem"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// handshake runs a TLS handshake between a server and a client config over
// loopback TCP and returns what each side saw. The client then reads one
// byte, so a server that refuses the client's certificate after the
// client's side of the handshake finished (TLS 1.3) fails the client too.
func handshake(t *testing.T, server, client *tls.Config) (srv, cli tls.ConnectionState, srvErr, cliErr error) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := l.Accept()
		if err != nil {
			srvErr = err
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		s := tls.Server(c, server)
		if srvErr = s.Handshake(); srvErr == nil {
			srv = s.ConnectionState()
			_, srvErr = s.Write([]byte{1})
		}
	}()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	tc := tls.Client(c, client)
	if cliErr = tc.Handshake(); cliErr == nil {
		cli = tc.ConnectionState()
		_, cliErr = tc.Read(make([]byte, 1))
	}
	<-done
	return srv, cli, srvErr, cliErr
}

func peerCurve(t *testing.T, cs tls.ConnectionState) elliptic.Curve {
	t.Helper()
	if len(cs.PeerCertificates) == 0 {
		t.Fatal("no peer certificate")
	}
	k, ok := cs.PeerCertificates[0].PublicKey.(*ecdsa.PublicKey)
	if !ok {
		t.Fatalf("peer key %T, want ECDSA", cs.PeerCertificates[0].PublicKey)
	}
	return k.Curve
}

// TestHostTLSIsMutualOnP256: the daemon dials the plugin, and the plugin
// dials the daemon's broker listeners; both directions authenticate both
// sides with the P-256 certificates HostTLS made, and each side refuses a
// peer with another certificate.
func TestHostTLSIsMutualOnP256(t *testing.T) {
	env, hostPEM, host, err := HostTLS()
	if err != nil {
		t.Fatal(err)
	}
	plug, err := pluginTLS(env)
	if err != nil {
		t.Fatal(err)
	}
	// PLUGIN_CLIENT_CERT carries the same daemon certificate as TLSEnv.
	if !strings.HasSuffix(env, hostPEM) {
		t.Fatal("the daemon certificate for PLUGIN_CLIENT_CERT is not the one in TLSEnv")
	}

	for _, dir := range []struct {
		name           string
		server, client *tls.Config
	}{
		{"daemon calls plugin", plug, host},
		{"plugin calls daemon broker", host, plug},
	} {
		t.Run(dir.name, func(t *testing.T) {
			srv, cli, serr, cerr := handshake(t, dir.server, dir.client)
			if serr != nil || cerr != nil {
				t.Fatalf("handshake: server %v, client %v", serr, cerr)
			}
			if c := peerCurve(t, cli); c != elliptic.P256() {
				t.Errorf("server certificate on %s, want P-256", c.Params().Name)
			}
			if c := peerCurve(t, srv); c != elliptic.P256() {
				t.Errorf("client certificate on %s, want P-256", c.Params().Name)
			}
		})
	}

	// Another daemon's identities: neither side accepts them.
	_, _, stranger, err := HostTLS()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, serr, cerr := handshake(t, plug, stranger); serr == nil && cerr == nil {
		t.Error("the plugin accepted a daemon with another certificate")
	}
	if _, _, serr, cerr := handshake(t, stranger, plug); serr == nil && cerr == nil {
		t.Error("the plugin trusted a broker with another certificate")
	}
	// A client without a certificate is refused.
	anon := host.Clone()
	anon.Certificates = nil
	if _, _, serr, _ := handshake(t, plug, anon); serr == nil {
		t.Error("the plugin accepted a client without a certificate")
	}
}

func TestPluginTLSRefusesMalformedIdentities(t *testing.T) {
	env, _, _, err := HostTLS()
	if err != nil {
		t.Fatal(err)
	}
	var blocks []string
	for rest := []byte(env); ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		blocks = append(blocks, string(pem.EncodeToMemory(b)))
	}
	if len(blocks) != 3 {
		t.Fatalf("HostTLS made %d PEM blocks, want 3", len(blocks))
	}
	for name, bad := range map[string]string{
		"empty":              "",
		"not PEM":            "plugin cert",
		"no daemon cert":     blocks[0] + blocks[1],
		"key first":          blocks[1] + blocks[0] + blocks[2],
		"key of another":     blocks[2] + blocks[1] + blocks[2],
		"daemon cert broken": blocks[0] + blocks[1] + "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := pluginTLS(bad)
			if err == nil || !strings.Contains(err.Error(), TLSEnv) {
				t.Fatalf("err %v, want one naming %s", err, TLSEnv)
			}
		})
	}
}

// TestDaemonTLSTakesTheKeyOutOfTheEnvironment: Serve uses the daemon's
// identities when TLSEnv is set and removes the variable (a process the
// plugin starts must not inherit the key); without it, go-plugin's AutoMTLS
// stays in charge.
func TestDaemonTLSTakesTheKeyOutOfTheEnvironment(t *testing.T) {
	t.Setenv(TLSEnv, "")
	os.Unsetenv(TLSEnv)
	provider, err := daemonTLS()
	if err != nil || provider != nil {
		t.Fatalf("without %s: provider %v, err %v; want neither", TLSEnv, provider != nil, err)
	}

	env, _, _, err := HostTLS()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(TLSEnv, env)
	provider, err = daemonTLS()
	if err != nil || provider == nil {
		t.Fatalf("with %s: provider %v, err %v", TLSEnv, provider != nil, err)
	}
	if _, still := os.LookupEnv(TLSEnv); still {
		t.Errorf("%s is still in the environment", TLSEnv)
	}
	cfg, err := provider()
	if err != nil || len(cfg.Certificates) != 1 || cfg.ClientAuth != tls.RequireAndVerifyClientCert {
		t.Fatalf("provider: %+v, %v", cfg, err)
	}

	t.Setenv(TLSEnv, "garbage")
	if _, err := daemonTLS(); err == nil {
		t.Error("a malformed value was accepted")
	}
}
