package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/apikeys/apikeystest"
	"github.com/wildcathub/wildcat/core/config"
	"github.com/wildcathub/wildcat/core/daemon"
	"github.com/wildcathub/wildcat/core/poll"
	"github.com/wildcathub/wildcat/core/session/sim"
	"github.com/wildcathub/wildcat/core/session/whatsapp"
	"github.com/wildcathub/wildcat/core/session/whatsapp/watest"
	"github.com/wildcathub/wildcat/core/store/storetest"
)

// pairDaemon runs a daemon core in-process with a declared sim account
// whose phone scans only when the test says so, and a declared whatsapp
// account whose WhatsApp is the protocol double.
func pairDaemon(t *testing.T) (*daemon.Daemon, string, *watest.Server) {
	t.Helper()
	cfg := config.Defaults()
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.Accounts = []config.Account{{ID: "demo", Driver: "sim", Name: "Demo"}, {ID: "phone", Driver: "whatsapp"}}
	cfg.HTTP.AdminKey = apikeystest.AdminToken
	wa := watest.New(t) // the whatsapp account's WhatsApp
	hc := wa.HTTPClient()
	d, err := daemon.New(cfg, daemon.Options{NoSignals: true, Sim: sim.Options{PairDelay: -1, QRInterval: 100 * time.Millisecond},
		WhatsApp: whatsapp.Driver{HTTP: whatsapp.HTTPClients{PreLogin: hc, Websocket: hc, Media: hc}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Shutdown(context.Background()) })
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	base := "http://" + d.Addr()
	// Ready means the declared accounts exist and have been started.
	poll.Until(t, 60*time.Second, func() error {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("readyz %d", resp.StatusCode)
		}
		return nil
	})
	return d, base, wa
}

// syncBuffer collects a process's output while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startPair runs `wildcatd accounts pair ID` against base and returns once
// it has printed at least codes QR codes; done receives its exit.
func startPair(t *testing.T, base, id string, codes int) (stdout, stderr *syncBuffer, done chan error) {
	t.Helper()
	cmd := exec.Command(binary, "accounts", "pair", id, "--api", base, "--interval", "20ms", "--timeout", "2m")
	cmd.Env = cleanEnv()
	stdout, stderr = &syncBuffer{}, &syncBuffer{}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done = make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	poll.Until(t, 60*time.Second, func() error {
		if n := strings.Count(stdout.String(), "Scan with WhatsApp"); n < codes {
			return fmt.Errorf("%d QR codes printed so far:\n%s%s", n, stdout, stderr)
		}
		return nil
	})
	return stdout, stderr, done
}

// TestAccountsPairPrintsQRUntilConnected runs `wildcatd accounts pair`
// against a running daemon: it prints rotating QR codes and exits 0 once
// the (simulated) phone has scanned one.
func TestAccountsPairPrintsQRUntilConnected(t *testing.T) {
	d, base, _ := pairDaemon(t)
	stdout, stderr, done := startPair(t, base, "demo", 2)
	if !strings.ContainsAny(stdout.String(), "▀▄█") {
		t.Fatalf("no QR blocks in the output:\n%s", stdout)
	}
	if err := d.Sim().Scan("demo"); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("pair exited with %v; stderr %s", err, stderr)
	}
	if want := "Connected as " + sim.JID("demo").String(); !strings.Contains(stdout.String(), want) {
		t.Fatalf("output lacks %q:\n%s", want, stdout)
	}
	// Pairing a connected account has nothing to do.
	if r := wildcatd(t, nil, "accounts", "pair", "demo", "--api", base); r.code != 0 || !strings.Contains(r.stdout, "already connected") {
		t.Fatalf("second pair: %+v", r)
	}
}

// TestAccountsPairWhatsApp pairs a real whatsmeow session from the
// terminal: the command draws the driver's QR code, the protocol double's
// phone scans it, and the command reports the linked JID.
func TestAccountsPairWhatsApp(t *testing.T) {
	_, base, wa := pairDaemon(t)
	stdout, stderr, done := startPair(t, base, "phone", 1)
	resp, err := http.Get(base + "/v1/accounts/phone/qr")
	if err != nil {
		t.Fatal(err)
	}
	var qr struct{ Code string }
	err = json.NewDecoder(resp.Body).Decode(&qr)
	resp.Body.Close()
	if err != nil || qr.Code == "" {
		t.Fatalf("no QR code over REST: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	acct, err := wa.ScanQR(ctx, qr.Code)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("pair exited with %v; stderr %s", err, stderr)
	}
	if want := "Connected as " + acct.JID().ToNonAD().String(); !strings.Contains(stdout.String(), want) {
		t.Fatalf("output lacks %q:\n%s", want, stdout)
	}
}

func TestAccountsPairFailures(t *testing.T) {
	_, base, _ := pairDaemon(t)
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"unknown account", []string{"nobody", "--api", base}, 3, "not found"},
		{"no daemon", []string{"demo", "--api", "http://" + storetest.FreeAddr(t)}, 1, "cannot reach the daemon"},
		{"timeout", []string{"demo", "--api", base, "--timeout", "300ms", "--interval", "20ms"}, 1, "not connected after"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := wildcatd(t, nil, append([]string{"accounts", "pair"}, tt.args...)...)
			if r.code != tt.code || !strings.Contains(r.stderr, tt.want) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", r.code, r.stderr, tt.code, tt.want)
			}
		})
	}
}
