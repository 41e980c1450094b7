// Command idlehttp is the footprint benchmark's floor: the smallest Go
// program that does what an idle daemon does — listen for HTTP on
// loopback and wait. Its resident memory is the raw limit the daemon's
// idle figure competes with.
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
)

func main() {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(l.Addr())
	_ = http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
}
