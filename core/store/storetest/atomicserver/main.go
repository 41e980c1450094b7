// Command atomicserver runs the tests' atomic MongoDB-compatible server in
// a process of its own: FerretDB on SQLite files behind a SerialProxy (see
// storetest.AtomicServer). Tests that start daemons build it without the
// race detector, so the server keeps its speed when the test binary is
// race-instrumented. It prints the mongodb:// URI on the first line of its
// standard output and runs until SIGTERM, SIGINT or its standard input
// closes; then it prints how busy the server was to standard error.
//
// Test infrastructure only: nothing ships it.
package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"sort"
	"syscall"
	"time"

	"github.com/wildcathub/wildcat/core/store/storetest"
)

func main() {
	dir := flag.String("dir", "", "directory for the SQLite files (required)")
	stats := flag.Bool("stats", false, "count commands by name and print the busiest at exit")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "atomicserver: --dir is required")
		os.Exit(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	srv, err := storetest.StartServer(*dir, "127.0.0.1:0", log)
	if err != nil {
		fmt.Fprintf(os.Stderr, "atomicserver: %v\n", err)
		os.Exit(1)
	}
	defer srv.Stop()
	u, err := url.Parse(srv.URI())
	if err != nil {
		fmt.Fprintf(os.Stderr, "atomicserver: %v\n", err)
		os.Exit(1)
	}
	p, err := storetest.StartSerialProxy("127.0.0.1:0", u.Host, log)
	if err != nil {
		fmt.Fprintf(os.Stderr, "atomicserver: %v\n", err)
		os.Exit(1)
	}
	defer p.Close()
	if *stats {
		p.CountCommands()
	}
	began := time.Now()
	fmt.Printf("mongodb://%s/\n", p.Addr())

	done := make(chan os.Signal, 1)
	signal.Notify(done, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		done <- syscall.SIGTERM
	}()
	<-done
	elapsed := time.Since(began)
	fmt.Fprintf(os.Stderr, "atomicserver: %d commands; the server was busy %s of %s (%.0f%%)\n",
		p.Commands(), p.Busy().Round(time.Millisecond), elapsed.Round(time.Millisecond), 100*p.Busy().Seconds()/elapsed.Seconds())
	type row struct {
		name string
		storetest.CommandStats
	}
	var rows []row
	for k, v := range p.PerCommand() {
		rows = append(rows, row{k, v})
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Busy > rows[j].Busy })
	for _, r := range rows[:min(len(rows), 12)] {
		fmt.Fprintf(os.Stderr, "  %6d × %-60s %s\n", r.Count, r.name, r.Busy.Round(time.Millisecond))
	}
}
