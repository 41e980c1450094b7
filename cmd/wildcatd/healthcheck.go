package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/wildcathub/wildcat/core/config"
)

// healthcheckFlags declares the flags of wildcatd healthcheck.
func healthcheckFlags(out io.Writer) (fs *pflag.FlagSet, rawURL, configPath *string, timeout *time.Duration) {
	fs = pflag.NewFlagSet("wildcatd healthcheck", pflag.ContinueOnError)
	fs.SetOutput(out)
	fs.SortFlags = false
	rawURL = fs.String("url", "", "URL to ask (default: /readyz at http.addr of the configuration, on loopback)")
	configPath = fs.String("config", "", "configuration file whose http.addr is asked (default "+config.DefaultPath+", or $"+config.PathEnv+")")
	timeout = fs.Duration("timeout", 5*time.Second, "how long to wait for the answer")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `Usage: wildcatd healthcheck [flags]

Asks the running daemon's /readyz and exits 0 when it answers 200, 1
otherwise (starting, store unreachable, not running). It is the container
image's HEALTHCHECK: the image has no shell or curl. The address is the
configuration's http.addr after WILDCAT_* variables, as the daemon reads it.

Flags:
%s`, fs.FlagUsages())
	}
	return fs, rawURL, configPath, timeout
}

// healthcheck asks /readyz once. Unhealthy is exit 1 (what Docker expects);
// a bad command line or configuration is exit 2, as everywhere in wildcatd.
func (c *cli) healthcheck(args []string) int {
	fs, rawURL, configPath, timeout := healthcheckFlags(c.stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return exitOK
		}
		fmt.Fprintf(c.stderr, "wildcatd: healthcheck: %v\n", err)
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(c.stderr, "wildcatd: healthcheck: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	target := *rawURL
	// The daemon's own listener on loopback: its certificate names the
	// host clients use, never 127.0.0.1, so it is not verified.
	ownListener := false
	if target == "" {
		loaded, err := config.Load(config.Source{Path: config.ResolvePath(*configPath, c.environ), Environ: c.environ})
		if err != nil {
			fmt.Fprintf(c.stderr, "wildcatd: healthcheck: %v\n", err)
			return exitUsage
		}
		target = apiURL(loaded.HTTP.Addr, loaded.HTTP.TLSCertFile != "") + "/readyz"
		ownListener = true
	}
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		fmt.Fprintf(c.stderr, "wildcatd: healthcheck: --url %q is not an http(s) URL\n", target)
		return exitUsage
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil // a proxy from the environment must not answer for the daemon
	if ownListener {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // loopback, own listener
	}
	client := &http.Client{Transport: tr, Timeout: *timeout}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		fmt.Fprintf(c.stderr, "wildcatd: healthcheck: %v\n", err)
		return exitUsage
	}
	resp, err := client.Do(req)
	if err != nil {
		fmt.Fprintf(c.stderr, "wildcatd: healthcheck: %s: %v\n", target, err)
		return exitFailure
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(c.stderr, "wildcatd: healthcheck: %s: %s %s\n", target, resp.Status, strings.TrimSpace(string(body)))
		return exitFailure
	}
	fmt.Fprintf(c.stdout, "ready: %s\n", target)
	return exitOK
}
