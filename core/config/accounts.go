package config

import (
	"fmt"

	"github.com/wildcathub/wildcat/core/accountid"
)

// The account id and driver rules live in package accountid, which the
// session package uses too; these names keep config's API.
var AccountIDPattern = accountid.Pattern

const (
	DriverWhatsApp    = accountid.DriverWhatsApp
	DriverSim         = accountid.DriverSim
	ReservedAccountID = accountid.Reserved
)

// DriverNames lists the known drivers in a stable order.
func DriverNames() []string { return accountid.DriverNames() }

// CheckAccountID explains why id cannot name an account, or returns nil.
func CheckAccountID(id string) error { return accountid.Check(id) }

// CheckDriver explains why name is not a known driver, or returns nil.
func CheckDriver(name string) error { return accountid.CheckDriver(name) }

// validateAccounts checks the accounts list; the first problem is an
// *Error naming e.g. accounts[1].id.
func validateAccounts(accounts []Account) error {
	seen := make(map[string]int, len(accounts))
	for i, a := range accounts {
		key := fmt.Sprintf("accounts[%d]", i)
		if err := CheckAccountID(a.ID); err != nil {
			return &Error{Key: key + ".id", Problem: err.Error()}
		}
		if j, dup := seen[a.ID]; dup {
			return &Error{Key: key + ".id", Problem: fmt.Sprintf("%q is already declared by accounts[%d]", a.ID, j)}
		}
		seen[a.ID] = i
		if err := CheckDriver(a.Driver); err != nil {
			return &Error{Key: key + ".driver", Problem: err.Error()}
		}
	}
	return nil
}
