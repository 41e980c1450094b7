// Command wildcatd is the Wildcat daemon: WhatsApp sessions, storage, the
// event pipeline and the REST API in one process.
package main

import "os"

func main() {
	os.Exit(run(os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
}
