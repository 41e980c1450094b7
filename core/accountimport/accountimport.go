// Package accountimport brings the linked devices of another whatsmeow
// program (wuzapi, GoWA, mautrix-whatsapp, …) into Wildcat as accounts:
// `wildcatd accounts import`. Each device's whole auth state is read from
// the program's whatsmeow sqlstore (authstore.Source, never written) and
// written through the same seam the engine-to-engine copy uses
// (authstore.Account into SQLiteCopy or MongoCopy), so the account connects
// without pairing again.
package accountimport

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"

	"github.com/wildcathub/wildcat/core/accountid"
	"github.com/wildcathub/wildcat/core/sealing"
	"github.com/wildcathub/wildcat/core/session"
	"github.com/wildcathub/wildcat/core/session/whatsapp/authstore"
	"github.com/wildcathub/wildcat/core/storecopy"
)

// UsageError is a bad choice on the command line; Flag names it.
type UsageError struct {
	Flag    string
	Problem string
}

func (e *UsageError) Error() string { return e.Flag + ": " + e.Problem }

// ErrPresent means a chosen device, or the account id it would take, is
// already in Wildcat; Replace overrides it.
var ErrPresent = errors.New("already present in Wildcat")

// Device is one linked device of the source.
type Device struct {
	JID          types.JID
	LID          types.JID
	PushName     string
	BusinessName string
	Platform     string
	// Present is the Wildcat account the device is linked as already
	// ("" when none).
	Present string

	dev *store.Device
}

// List reads the source's devices and which of them Wildcat has.
func List(ctx context.Context, src *authstore.Source, t *storecopy.Target) ([]*Device, error) {
	devs, err := src.Devices(ctx)
	if err != nil {
		return nil, err
	}
	have, err := t.Auth.Devices(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*Device, 0, len(devs))
	for _, d := range devs {
		if d.ID == nil {
			continue
		}
		out = append(out, &Device{JID: *d.ID, LID: d.LID, PushName: d.PushName, BusinessName: d.BusinessName,
			Platform: d.Platform, Present: have[d.ID.String()], dev: d})
	}
	slices.SortFunc(out, func(a, b *Device) int { return strings.Compare(a.JID.String(), b.JID.String()) })
	return out, nil
}

// Options choose what Import brings in.
type Options struct {
	// All devices, or those JIDs (a device JID, or a phone number's JID
	// or bare number when the source has one device of it).
	All  bool
	JIDs []string
	// ID is the account id of the one device chosen; "" derives each from
	// its phone number.
	ID string
	// Replace imports devices (and account ids) Wildcat has already,
	// replacing their auth state.
	Replace bool
	// Keys seal the secrets as the daemon does (nil: encryption off).
	Keys *sealing.Keyring
	// Source names the source in the accounts' state reason.
	Source string
	Now    func() time.Time
}

// Imported is one device brought in.
type Imported struct {
	Device    *Device
	AccountID string
	// Replaced: the account existed and its auth state was replaced.
	Replaced bool
	// Rows counts the auth state's items besides the device record.
	Rows int
}

// Result is what Import did.
type Result struct {
	Imported    []*Imported
	LIDMappings int
}

// plan is one device and the account it goes to.
type plan struct {
	dev      *Device
	id       string
	existing *session.AccountInfo
}

// Check reports a bad choice of devices or account id (a *UsageError)
// from the source alone, before the target is opened.
func Check(ctx context.Context, src *authstore.Source, opts Options) error {
	devs, err := src.Devices(ctx)
	if err != nil {
		return err
	}
	list := make([]*Device, 0, len(devs))
	for _, d := range devs {
		if d.ID != nil {
			list = append(list, &Device{JID: *d.ID, LID: d.LID, dev: d})
		}
	}
	if _, err := choose(list, opts); err != nil {
		return err
	}
	if opts.ID != "" {
		if err := accountid.Check(opts.ID); err != nil {
			return &UsageError{Flag: "--id", Problem: err.Error()}
		}
	}
	return nil
}

// Import brings the chosen devices in. Every choice is checked before
// anything is written: a bad one is a *UsageError, a device or account id
// Wildcat has already (without Replace) ErrPresent.
func Import(ctx context.Context, src *authstore.Source, t *storecopy.Target, opts Options) (*Result, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	devs, err := List(ctx, src, t)
	if err != nil {
		return nil, err
	}
	chosen, err := choose(devs, opts)
	if err != nil {
		return nil, err
	}
	plans, err := planAccounts(ctx, t, chosen, opts)
	if err != nil {
		return nil, err
	}
	res := &Result{}
	if len(plans) == 0 {
		return res, nil
	}
	// The LID map first: facts about users, which the accounts' state
	// refers to.
	lids, err := src.LIDMappings(ctx)
	if err != nil {
		return nil, err
	}
	if len(lids) > 0 {
		if err := t.LIDs.Import(ctx, lids); err != nil {
			return nil, err
		}
	}
	res.LIDMappings = len(lids)
	for _, p := range plans {
		acct, err := src.Account(ctx, p.dev.dev, p.id, opts.Keys)
		if err != nil {
			return res, err
		}
		if p.existing != nil || p.dev.Present != "" {
			// Replacing: nothing of the state Wildcat had is kept (sessions
			// it advanced since would not match the source's).
			if err := t.DeleteAuth(ctx, p.id); err != nil {
				return res, fmt.Errorf("delete the auth state of %s: %w", p.id, err)
			}
		}
		// The auth state before the account record: a daemon sharing a
		// MongoDB never sees an account whose device is not complete.
		if err := t.Auth.Import(ctx, []*authstore.Account{acct}); err != nil {
			return res, err
		}
		if err := writeRecord(ctx, t.Accounts, p, opts); err != nil {
			return res, err
		}
		res.Imported = append(res.Imported, &Imported{Device: p.dev, AccountID: p.id, Replaced: p.existing != nil,
			Rows: len(acct.Identities) + len(acct.Sessions) + len(acct.PreKeys) + len(acct.SenderKeys) + len(acct.AppStateKeys) +
				len(acct.AppStates) + len(acct.AppStateMACs) + len(acct.Contacts) + len(acct.ChatSettings) + len(acct.MsgSecrets) +
				len(acct.PrivacyTokens) + len(acct.EventBuffer)})
	}
	return res, nil
}

// choose picks the devices opts name.
func choose(devs []*Device, opts Options) ([]*Device, error) {
	if opts.All {
		if len(opts.JIDs) > 0 {
			return nil, &UsageError{Flag: "--all", Problem: "give --all or --jid, not both"}
		}
		if opts.ID != "" && len(devs) > 1 {
			return nil, &UsageError{Flag: "--id", Problem: fmt.Sprintf("names one account, and the source has %d devices: choose one with --jid", len(devs))}
		}
		return devs, nil
	}
	if len(opts.JIDs) == 0 {
		return nil, &UsageError{Flag: "--jid", Problem: "choose the devices to import with --jid, or --all"}
	}
	if opts.ID != "" && len(opts.JIDs) > 1 {
		return nil, &UsageError{Flag: "--id", Problem: "names one account: give a single --jid with it"}
	}
	var out []*Device
	for _, want := range opts.JIDs {
		d, err := find(devs, want)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	return out, nil
}

// find matches a --jid: the device's JID, or its phone number's (with or
// without the server) when that phone has one device in the source.
func find(devs []*Device, want string) (*Device, error) {
	w := strings.TrimPrefix(strings.TrimSpace(want), "+")
	if w == "" {
		return nil, &UsageError{Flag: "--jid", Problem: "must not be empty"}
	}
	if !strings.Contains(w, "@") {
		w += "@" + types.DefaultUserServer
	}
	jid, err := types.ParseJID(w)
	if err != nil || jid.User == "" {
		return nil, &UsageError{Flag: "--jid", Problem: fmt.Sprintf("%q is not a WhatsApp JID (like 15551234567:12@s.whatsapp.net) or phone number", want)}
	}
	var matches []*Device
	for _, d := range devs {
		if d.JID == jid {
			return d, nil
		}
		if jid.Device == 0 && (d.JID.ToNonAD() == jid || d.LID.ToNonAD() == jid) {
			matches = append(matches, d)
		}
	}
	switch len(matches) {
	case 1:
		return matches[0], nil
	case 0:
		have := make([]string, len(devs))
		for i, d := range devs {
			have[i] = d.JID.String()
		}
		return nil, &UsageError{Flag: "--jid", Problem: fmt.Sprintf("%s: no such device in the source (it has %s)", want, orNone(have))}
	}
	return nil, &UsageError{Flag: "--jid", Problem: fmt.Sprintf("%s: the source has %d devices of that number; give the device's JID", want, len(matches))}
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// planAccounts picks each device's account id and checks it can be taken.
func planAccounts(ctx context.Context, t *storecopy.Target, chosen []*Device, opts Options) ([]plan, error) {
	if opts.ID != "" {
		if err := accountid.Check(opts.ID); err != nil {
			return nil, &UsageError{Flag: "--id", Problem: err.Error()}
		}
	}
	// Derived ids are the phone number; two devices of one number in the
	// same import add the device number to both.
	perUser := map[string]int{}
	for _, d := range chosen {
		perUser[d.JID.User]++
	}
	var plans []plan
	var present []string
	taken := map[string]bool{}
	for _, d := range chosen {
		id := opts.ID
		if d.Present != "" {
			if !opts.Replace {
				present = append(present, fmt.Sprintf("device %s is account %q", d.JID, d.Present))
				continue
			}
			if id != "" && id != d.Present {
				return nil, &UsageError{Flag: "--id", Problem: fmt.Sprintf("device %s is account %q in Wildcat already: import it as %q, or delete that account first", d.JID, d.Present, d.Present)}
			}
			id = d.Present
		}
		if id == "" {
			id = d.JID.User
			if perUser[d.JID.User] > 1 {
				id = fmt.Sprintf("%s-%d", d.JID.User, d.JID.Device)
			}
			if err := accountid.Check(id); err != nil {
				return nil, &UsageError{Flag: "--id", Problem: fmt.Sprintf("device %s: cannot derive an account id from it (%v); give one with --id", d.JID, err)}
			}
		}
		if taken[id] {
			return nil, &UsageError{Flag: "--id", Problem: fmt.Sprintf("two devices would both be account %q", id)}
		}
		taken[id] = true
		existing, err := t.Accounts.Get(ctx, id)
		switch {
		case errors.Is(err, session.ErrAccountNotFound):
			existing = nil
		case err != nil:
			return nil, fmt.Errorf("read account %s: %w", id, err)
		case !opts.Replace:
			present = append(present, fmt.Sprintf("account id %q is taken (device %s would take it)", id, d.JID))
			continue
		case existing.Driver != accountid.DriverWhatsApp:
			return nil, &UsageError{Flag: "--id", Problem: fmt.Sprintf("account %q uses the %s driver, not %s: choose another id", id, existing.Driver, accountid.DriverWhatsApp)}
		}
		plans = append(plans, plan{dev: d, id: id, existing: existing})
	}
	if len(present) > 0 {
		return nil, fmt.Errorf("%w: %s; nothing was imported (use --replace to replace their auth state)", ErrPresent, strings.Join(present, "; "))
	}
	return plans, nil
}

// writeRecord creates the account, or moves an existing one to the
// imported device: paired, offline until a daemon starts it.
func writeRecord(ctx context.Context, accounts session.AccountStore, p plan, opts Options) error {
	now := opts.Now().UTC().Truncate(time.Millisecond)
	reason := "imported from " + opts.Source
	jid := p.dev.JID.ToNonAD().String()
	if p.existing != nil {
		err := accounts.Apply(ctx, p.id, session.AccountChange{State: session.StateDisconnected, Reason: reason, At: now,
			JID: jid, PushName: p.dev.PushName, ClearPairing: true, ClearLastError: true})
		if err != nil {
			return fmt.Errorf("update account %s: %w", p.id, err)
		}
		return nil
	}
	name := p.dev.PushName
	if name == "" {
		name = p.dev.BusinessName
	}
	for len(name) > 256 { // the API's limit, cut at a character
		_, n := utf8.DecodeLastRuneInString(name)
		name = name[:len(name)-n]
	}
	err := accounts.Insert(ctx, &session.AccountInfo{ID: p.id, Driver: accountid.DriverWhatsApp, Name: name,
		State: session.StateDisconnected, Reason: reason, JID: jid, PushName: p.dev.PushName,
		Since: now, CreatedAt: now, UpdatedAt: now})
	if err != nil {
		return fmt.Errorf("create account %s: %w", p.id, err)
	}
	return nil
}
