package daemon_test

import (
	"time"

	"github.com/wildcathub/wildcat/core/session/whatsapp"
	"github.com/wildcathub/wildcat/core/session/whatsapp/watest"
)

// whatsappDriver points the daemon's whatsmeow driver at the protocol
// double, with a reconnect backoff short enough for tests.
func whatsappDriver(srv *watest.Server) whatsapp.Driver {
	hc := srv.HTTPClient()
	return whatsapp.Driver{
		HTTP:         whatsapp.HTTPClients{PreLogin: hc, Websocket: hc, Media: hc},
		ReconnectMin: 20 * time.Millisecond,
		ReconnectMax: 200 * time.Millisecond,
	}
}
