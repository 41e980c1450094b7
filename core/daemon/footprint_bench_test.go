package daemon_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/daemon"
	"github.com/wildcathub/wildcat/core/poll"
	"github.com/wildcathub/wildcat/core/session/sim"
	"github.com/wildcathub/wildcat/core/session/whatsapp/watest"
)

// BenchmarkAccountFootprint measures what one more connected account costs
// the daemon's heap: live heap after a collection, before and after
// connecting 40 accounts over REST — sim accounts, and whatsapp accounts
// paired through the unmodified whatsmeow client against the protocol
// double. The double runs in this process, so the whatsapp figure
// includes its side of each connection (an overestimate). The process's
// resident growth per sim account is BenchmarkFootprint's (cmd/wildcatd).
//
//	make bench   (or: go test -run '^$' -bench AccountFootprint ./core/daemon/)
func BenchmarkAccountFootprint(b *testing.B) {
	const accounts = 40
	for _, driver := range []string{"sim", "whatsapp"} {
		b.Run(driver, func(b *testing.B) {
			// One measurement: the figure is a size, not a cost per
			// iteration; make bench runs it with -benchtime 1x (a fast
			// sim run would otherwise be repeated on a heap the earlier
			// runs left behind).
			wa := watest.New(b)
			d, err := daemon.New(testConfig(b, ""), daemon.Options{
				NoSignals: true, WhatsApp: whatsappDriver(wa), Sim: sim.Options{PairDelay: time.Millisecond},
				ConnectRetryMin: 10 * time.Millisecond, ConnectRetryMax: 100 * time.Millisecond,
			})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = d.Shutdown(context.Background()) })
			if err := d.Start(); err != nil {
				b.Fatal(err)
			}
			c := &client{t: b, base: "http://" + d.Addr()}
			poll.Until(b, time.Minute, func() error { return d.Ready(context.Background()) })
			before := float64(liveHeap())
			for i := range accounts {
				id := fmt.Sprintf("fp%02d", i)
				c.must(c.post("/v1/accounts", fmt.Sprintf(`{"id":%q,"driver":%q}`, id, driver)), 201)
				c.must(c.post("/v1/accounts/"+id+"/connect", ""), 202)
				if driver == "whatsapp" {
					c.waitState(id, "pairing")
					code, _ := c.must(c.get("/v1/accounts/"+id+"/qr"), 200).json(b)["code"].(string)
					ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
					_, err := wa.ScanQR(ctx, code)
					cancel()
					if err != nil {
						b.Fatal(err)
					}
				}
				c.waitState(id, "connected")
			}
			perAccount := (float64(liveHeap()) - before) / accounts / 1024
			b.ReportMetric(perAccount, "heap-KB/account")
			b.Logf("%d connected %s accounts: %.0f KB of live heap each", accounts, driver, perAccount)
		})
	}
}
