package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/mdp/qrterminal/v3"

	"github.com/wildcathub/wildcat/sdk/wildcat"
)

// pairer drives one account to connected over the REST API: `wildcatd
// accounts pair`.
type pairer struct {
	c        *wildcat.Client
	id       string
	phone    string // pair with a code for this number instead of a QR code
	out      io.Writer
	interval time.Duration
}

func (p *pairer) run(ctx context.Context) error {
	a, err := p.c.Account(ctx, p.id)
	if err != nil {
		return err
	}
	if a.State == wildcat.StateConnected {
		fmt.Fprintf(p.out, "Account %s is already connected as %s.\n", p.id, a.JID)
		return nil
	}
	if a.State != wildcat.StatePairing {
		// A conflict: it started connecting meanwhile, which is what we wanted.
		if _, err := p.c.ConnectAccount(ctx, p.id); err != nil && !errors.Is(err, wildcat.ErrConflict) {
			return err
		}
		fmt.Fprintf(p.out, "Connecting account %s…\n", p.id)
	}
	progressed := a.State == wildcat.StatePairing
	shown, codeShown := "", false
	for {
		if a, err = p.c.Account(ctx, p.id); err != nil {
			return err
		}
		switch a.State {
		case wildcat.StateConnected:
			fmt.Fprintf(p.out, "Connected as %s (%s).\n", a.JID, a.PushName)
			return nil
		case wildcat.StatePairing:
			progressed = true
			if p.phone != "" {
				if !codeShown {
					code, err := p.c.PairingCode(ctx, p.id, p.phone)
					if err != nil {
						return err
					}
					codeShown = true
					fmt.Fprintf(p.out, "Pairing code: %s\nOn the phone: WhatsApp › Settings › Linked devices › Link a device › Link with phone number, and type it.\n", code)
				}
				break
			}
			q, err := p.c.QR(ctx, p.id)
			if err != nil && !errors.Is(err, wildcat.ErrConflict) {
				return err
			}
			if err == nil && q.Code != shown {
				shown = q.Code
				fmt.Fprintln(p.out)
				qrterminal.GenerateHalfBlock(q.Code, qrterminal.L, p.out)
				fmt.Fprintf(p.out, "Scan with WhatsApp › Settings › Linked devices › Link a device (valid until %s).\n",
					q.ExpiresAt.Local().Format("15:04:05"))
			}
		case wildcat.StateLoggedOut:
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
