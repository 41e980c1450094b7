// Package wildcat is a typed Go client for the Wildcat REST API: the API a
// running wildcatd serves under /v1 (accounts, sends, message history,
// webhooks, deliveries, keys, rules and plugins status, and the live event
// stream).
//
//	c, err := wildcat.New("http://127.0.0.1:8080", wildcat.WithKey(os.Getenv("WILDCAT_API_KEY")))
//	acct, err := c.CreateAccount(ctx, wildcat.CreateAccount{ID: "demo", Driver: "sim"})
//	sent, err := c.Send(ctx, "demo", wildcat.SendRequest{To: "+15551234567", Text: "Hello"})
//
// Every method takes a context first and returns an *Error for an answer
// the API refused (an RFC 9457 problem document): test it with errors.Is
// against ErrNotFound, ErrUnauthorized, ErrForbidden, ErrConflict,
// ErrInvalid, ErrRateLimited or ErrUnavailable, or errors.As it for the
// status, type, title, detail and offending field.
//
// Pairing: ConnectAccount starts it; show QR (it rotates: poll it, or
// watch the account.qr events of Events, which carry the code) until the
// account.connected event or state, or ask PairingCode for a code to type
// on the phone.
//
// Lists that page (messages, deliveries) come both as one page at a time
// (MessagesPage, DeliveriesPage: pass NextCursor back as Cursor) and as an
// iterator over every item (Messages, Deliveries). Events streams
// GET /v1/events and reconnects after a dropped connection with the last
// event id it saw, so no stored event is missed.
//
// This package is not the plugin SDK (package sdk): a plugin talks to the
// daemon that launched it over gRPC; this client talks to any daemon over
// HTTP.
package wildcat
