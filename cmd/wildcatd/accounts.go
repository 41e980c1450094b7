package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/mdp/qrterminal/v3"
	"github.com/spf13/pflag"

	"github.com/wildcathub/wildcat/core/apikeys"
	"github.com/wildcathub/wildcat/core/config"
)

const accountsUsage = `Usage: wildcatd accounts pair ID [flags]

Pairs account ID with a phone through the running daemon's REST API: starts
connecting the account if needed, prints each QR code in the terminal as it
rotates, and exits 0 once the account is connected. Scan the code in
WhatsApp under Settings › Linked devices › Link a device. Exits 1 when the
account is logged out instead, on an error, or when --timeout passes.

Flags:
`

// pairFlags are the flags of wildcatd accounts pair.
type pairFlags struct {
	api, key, keyFile *string
	timeout, interval *time.Duration
}

func accountsFlags(out io.Writer) (*pflag.FlagSet, *pairFlags) {
	fs := pflag.NewFlagSet("wildcatd accounts pair", pflag.ContinueOnError)
	fs.SetOutput(out)
	fs.SortFlags = false
	f := &pairFlags{}
	f.api = fs.String("api", "http://127.0.0.1:8080", "base URL of the running daemon's REST API")
	f.key = fs.String("key", "", "API key (wck_…) with the accounts:write scope; default $WILDCAT_API_KEY, else the file --key-file")
	f.keyFile = fs.String("key-file", "", "file holding the API key; default the admin key the daemon wrote, $WILDCAT_DATA_DIR/admin.key or data/admin.key")
	f.timeout = fs.Duration("timeout", 5*time.Minute, "give up when the account is not connected after this long")
	f.interval = fs.Duration("interval", time.Second, "how often to ask the daemon for the account's state")
	fs.Usage = func() { fmt.Fprintf(fs.Output(), "%s%s", accountsUsage, fs.FlagUsages()) }
	return fs, f
}

// apiKey finds the key a client subcommand sends: --key, $WILDCAT_API_KEY,
// else the file (--key-file, or the admin key under the data directory).
// "" when there is none: the daemon may run with http.auth off.
func (c *cli) apiKey(key, keyFile string) (string, error) {
	if key != "" {
		return key, nil
	}
	if k := c.getenv("WILDCAT_API_KEY"); k != "" {
		return k, nil
	}
	explicit := keyFile != ""
	if !explicit {
		dir := c.getenv("WILDCAT_DATA_DIR")
		if dir == "" {
			dir = config.Defaults().DataDir
		}
		keyFile = filepath.Join(dir, apikeys.AdminKeyFile)
	}
	b, err := os.ReadFile(keyFile)
	if err != nil {
		if !explicit && errors.Is(err, fs.ErrNotExist) {
			return "", nil
		}
		return "", fmt.Errorf("read the API key: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

func (c *cli) getenv(name string) string {
	for _, kv := range c.environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			return v
		}
	}
	return ""
}

func (c *cli) accounts(args []string) int {
	if len(args) == 0 || args[0] != "pair" {
		return c.usageError("accounts: expected the subcommand pair")
	}
	fs, f := accountsFlags(c.stderr)
	api, timeout, interval := f.api, f.timeout, f.interval
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return exitOK
		}
		fmt.Fprintf(c.stderr, "wildcatd: %v\n", err)
		return exitUsage
	}
	if fs.NArg() != 1 {
		fmt.Fprintf(c.stderr, "wildcatd: accounts pair: expected one account ID\n\n")
		fs.Usage()
		return exitUsage
	}
	base, err := url.Parse(strings.TrimRight(*api, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		fmt.Fprintf(c.stderr, "wildcatd: --api %q is not an http(s) URL\n", *api)
		return exitUsage
	}
	key, err := c.apiKey(*f.key, *f.keyFile)
	if err != nil {
		fmt.Fprintf(c.stderr, "wildcatd: accounts pair: %v\n", err)
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	p := &pairer{api: base.String(), id: fs.Arg(0), key: key, out: c.stdout, interval: *interval,
		http: &http.Client{Timeout: 30 * time.Second}}
	if err := p.run(ctx); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("account %s not connected after %s", p.id, *timeout)
		}
		fmt.Fprintf(c.stderr, "wildcatd: accounts pair: %v\n", err)
		return exitFailure
	}
	return exitOK
}

// pairer drives one account to connected over the REST API.
type pairer struct {
	api, id  string
	key      string // sent as a bearer token; "" sends none
	out      io.Writer
	interval time.Duration
	http     *http.Client
}

type accountState struct {
	State     string `json:"state"`
	Reason    string `json:"reason"`
	JID       string `json:"jid"`
	PushName  string `json:"pushName"`
	LastError string `json:"lastError"`
}

type qrCode struct {
	Code      string    `json:"code"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// problem is the part of an API problem document worth showing.
type problem struct {
	Detail string `json:"detail"`
	Title  string `json:"title"`
}

func (p *pairer) run(ctx context.Context) error {
	var a accountState
	if _, err := p.call(ctx, http.MethodGet, "/v1/accounts/"+url.PathEscape(p.id), &a); err != nil {
		return err
	}
	if a.State == "connected" {
		fmt.Fprintf(p.out, "Account %s is already connected as %s.\n", p.id, a.JID)
		return nil
	}
	if a.State != "pairing" {
		status, err := p.call(ctx, http.MethodPost, "/v1/accounts/"+url.PathEscape(p.id)+"/connect", &a)
		// 409: it started connecting meanwhile, which is what we wanted.
		if err != nil && status != http.StatusConflict {
			return err
		}
		fmt.Fprintf(p.out, "Connecting account %s…\n", p.id)
	}
	progressed := a.State == "pairing"
	shown := ""
	for {
		if _, err := p.call(ctx, http.MethodGet, "/v1/accounts/"+url.PathEscape(p.id), &a); err != nil {
			return err
		}
		switch a.State {
		case "connected":
			fmt.Fprintf(p.out, "Connected as %s (%s).\n", a.JID, a.PushName)
			return nil
		case "pairing":
			progressed = true
			var q qrCode
			status, err := p.call(ctx, http.MethodGet, "/v1/accounts/"+url.PathEscape(p.id)+"/qr", &q)
			if err != nil && status != http.StatusConflict {
				return err
			}
			if err == nil && q.Code != shown {
				shown = q.Code
				fmt.Fprintln(p.out)
				qrterminal.GenerateHalfBlock(q.Code, qrterminal.L, p.out)
				fmt.Fprintf(p.out, "Scan with WhatsApp › Settings › Linked devices › Link a device (valid until %s).\n",
					q.ExpiresAt.Local().Format("15:04:05"))
			}
		case "logged_out":
			if progressed {
				return fmt.Errorf("account %s was logged out: %s", p.id, orNone(a.Reason))
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(p.interval):
		}
	}
}

func orNone(s string) string {
	if s == "" {
		return "no reason given"
	}
	return s
}

// call sends one request and decodes a 2xx JSON answer into dst; any other
// answer becomes an error carrying the problem's detail.
func (p *pairer) call(ctx context.Context, method, path string, dst any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, method, p.api+path, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", "application/json")
	if p.key != "" {
		req.Header.Set("Authorization", "Bearer "+p.key)
	}
	resp, err := p.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		return 0, fmt.Errorf("cannot reach the daemon at %s (is wildcatd running? see --api): %w", p.api, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var pr problem
		if json.Unmarshal(body, &pr) == nil && pr.Detail != "" {
			return resp.StatusCode, fmt.Errorf("%s", pr.Detail)
		}
		return resp.StatusCode, fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	if err := json.Unmarshal(body, dst); err != nil {
		return resp.StatusCode, fmt.Errorf("%s %s: unexpected answer: %w", method, path, err)
	}
	return resp.StatusCode, nil
}
