package sdk_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"errors"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	plugin "github.com/hashicorp/go-plugin"

	"github.com/wildcathub/wildcat/sdk"
)

// TestServeUsesTheDaemonsCertificates starts the echo example the way
// wildcatd does (sdk.HostTLS, no AutoMTLS) and checks every connection the
// daemon's side makes: the plugin presents the P-256 certificate made for
// it, not a P-521 one of go-plugin's AutoMTLS, and calls work.
func TestServeUsesTheDaemonsCertificates(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "echo")
	if out, err := exec.Command("go", "build", "-o", bin, "./examples/echo").CombinedOutput(); err != nil {
		t.Fatalf("build echo: %v\n%s", err, out)
	}
	env, hostCert, cfg, err := sdk.HostTLS()
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var curves []string
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		k, ok := cs.PeerCertificates[0].PublicKey.(*ecdsa.PublicKey)
		if !ok {
			return errors.New("peer key is not ECDSA")
		}
		mu.Lock()
		curves = append(curves, k.Curve.Params().Name)
		mu.Unlock()
		return nil
	}
	cmd := exec.Command(bin)
	cmd.Env = []string{sdk.TLSEnv + "=" + env, "PLUGIN_CLIENT_CERT=" + hostCert}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake,
		VersionedPlugins: sdk.VersionedPlugins(nil),
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		TLSConfig:        cfg,
	})
	t.Cleanup(client.Kill)
	rpc, err := client.Client()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := rpc.Dispense(sdk.PluginKey)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	info, err := raw.(*sdk.PluginClient).Describe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != "echo" {
		t.Errorf("described as %q", info.Name)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(curves) == 0 {
		t.Fatal("no TLS connection was verified")
	}
	for _, c := range curves {
		if c != elliptic.P256().Params().Name {
			t.Errorf("the plugin presented a certificate on %s, want P-256", c)
		}
	}
}
