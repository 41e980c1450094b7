package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/wildcathub/wildcat/core/session/sim"
)

const simServeUsage = `Usage: wildcatd sim serve [--listen ADDR] [flags]

Serve a simulated WhatsApp network over HTTP/WebSocket, for several daemons
to share: set drivers.sim.network_url to http://ADDR on each. Their sim
accounts then connect here instead of to their own in-process network;
inbound messages stay here until a daemon has stored and acknowledged them,
and an account connected from two daemons at once is recorded (and the
older connection replaced, as WhatsApp does).

  POST /v1/accounts/{id}/inbound  {"from": "15551234567", "text": "hi"}
                                  an outside contact writes to account id
  GET  /v1/stats                  connections, overlaps, pending and acked

It prints the URL it serves on, then runs until SIGINT or SIGTERM.

`

func simServeFlags(out io.Writer) (fs *pflag.FlagSet, listen *string, delivered, read *time.Duration) {
	fs = pflag.NewFlagSet("wildcatd sim serve", pflag.ContinueOnError)
	fs.SetOutput(out)
	fs.SortFlags = false
	listen = fs.String("listen", "127.0.0.1:7600", "host:port to serve on (port 0 picks a free one)")
	delivered = fs.Duration("delivered-delay", 300*time.Millisecond, "time from a send to its delivered receipt")
	read = fs.Duration("read-delay", 1500*time.Millisecond, "time from delivered to read; negative: never read")
	fs.Usage = func() { fmt.Fprintf(fs.Output(), "%s%s", simServeUsage, fs.FlagUsages()) }
	return fs, listen, delivered, read
}

func (c *cli) simServe(args []string) int {
	fs, listen, delivered, read := simServeFlags(c.stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return exitOK
		}
		fmt.Fprintf(c.stderr, "wildcatd: %v\n", err)
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(c.stderr, "wildcatd: sim serve: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	if *delivered <= 0 {
		fmt.Fprintln(c.stderr, "wildcatd: sim serve: --delivered-delay must be greater than zero")
		return exitUsage
	}
	if *read == 0 {
		fmt.Fprintln(c.stderr, "wildcatd: sim serve: --read-delay must not be zero (negative: never read)")
		return exitUsage
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(c.stderr, "wildcatd: sim serve: listen on --listen %s: %v\n", *listen, err)
		return exitUsage
	}
	log := slog.New(slog.NewTextHandler(c.stderr, nil))
	srv := sim.NewServer(sim.ServerOptions{Logger: log, DeliveredDelay: *delivered, ReadDelay: *read})
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	fmt.Fprintf(c.stdout, "sim network on http://%s\n", ln.Addr())
	select {
	case <-ctx.Done():
	case err := <-served:
		fmt.Fprintf(c.stderr, "wildcatd: sim serve: %v\n", err)
		return exitFailure
	}
	srv.Close() // ends the WebSockets, which Shutdown does not wait for
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = hs.Shutdown(sctx)
	return exitOK
}
