package daemon

import (
	"context"
	"fmt"

	"github.com/wildcathub/wildcat/core/session"
	"github.com/wildcathub/wildcat/core/session/sim"
	"github.com/wildcathub/wildcat/core/session/whatsapp"
	"github.com/wildcathub/wildcat/core/store"
)

// The accounts' storage wiring: on the embedded engine (d.sql set) every
// store is SQLite's, otherwise MongoDB's.

// accountStore holds the accounts, their proxies sealed (d.keys).
func (d *Daemon) accountStore() session.AccountStore {
	if d.sql != nil {
		return session.SealedAccounts(session.NewSQLiteAccounts(d.sql), d.keys)
	}
	return session.SealedAccounts(session.NewMongoAccounts(d.store.DB()), d.keys)
}

// simAuth holds the sim accounts' auth state.
func (d *Daemon) simAuth() sim.AuthStore {
	if d.sql != nil {
		return sim.NewSQLiteAuth(d.sql)
	}
	return sim.NewMongoAuth(d.store.DB())
}

// simGroups holds the sim network's groups.
func (d *Daemon) simGroups() sim.GroupStore {
	if d.sql != nil {
		return sim.NewSQLiteGroups(d.sql)
	}
	return sim.NewMongoGroups(d.store.DB())
}

// mediaRetries holds the whatsapp driver's media retry answers.
func (d *Daemon) mediaRetries() whatsapp.MediaRetryStore {
	if d.sql != nil {
		return whatsapp.NewSQLiteMediaRetries(d.sql)
	}
	return whatsapp.NewMongoMediaRetries(d.store.DB())
}

// forgetAuth deletes a deleted account's auth state, every driver's.
func (d *Daemon) forgetAuth(ctx context.Context, accountID string) error {
	if d.sql == nil {
		// MongoDB: one auth_{accountId} collection holds whatever the
		// account's driver kept (whatsmeow's device, the sim's pairing).
		if err := d.store.DB().Collection(store.AuthCollection(accountID)).Drop(ctx); err != nil {
			return fmt.Errorf("drop auth collection: %w", err)
		}
		return nil
	}
	if err := d.sim.ForgetAuth(ctx, accountID); err != nil {
		return err
	}
	// whatsmeow's device lives in its sqlstore tables; without this a
	// failed logout before the delete would leave it behind.
	if d.waAuth != nil {
		if err := d.waAuth.Account(accountID).Delete(ctx); err != nil {
			return fmt.Errorf("delete whatsapp auth state: %w", err)
		}
	}
	return nil
}
