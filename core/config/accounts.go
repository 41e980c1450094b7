package config

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// AccountIDPattern is the shape of an account id, wherever one is chosen
// (config.yaml or the REST API). Ids become parts of collection names
// (auth_{id}) and of event ids joined with ':', so they are kept to
// lower-case letters, digits, '_' and '-'.
var AccountIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// Driver names an account may use. A known driver may still be missing
// from a build (the daemon then refuses to connect such an account), but an
// unknown one is a typo.
const (
	DriverWhatsApp = "whatsapp"
	DriverSim      = "sim"
)

// DriverNames lists the known drivers in a stable order.
func DriverNames() []string { return []string{DriverWhatsApp, DriverSim} }

// ReservedAccountID cannot name an account: auth_lid_map is the WhatsApp
// auth store's shared collection, not an account's auth_{id}.
const ReservedAccountID = "lid_map"

// CheckAccountID explains why id cannot name an account, or returns nil.
func CheckAccountID(id string) error {
	if id == ReservedAccountID {
		return fmt.Errorf("%q is reserved (its auth collection would clash with the shared LID map); choose another id", id)
	}
	if AccountIDPattern.MatchString(id) {
		return nil
	}
	if id == "" {
		return fmt.Errorf("must not be empty")
	}
	return fmt.Errorf("%q is not a valid account id: use 1 to 63 lower-case letters, digits, '_' or '-', starting with a letter or digit", id)
}

// CheckDriver explains why name is not a known driver, or returns nil.
func CheckDriver(name string) error {
	if slices.Contains(DriverNames(), name) {
		return nil
	}
	if name == "" {
		return fmt.Errorf("must not be empty (one of %s)", strings.Join(DriverNames(), ", "))
	}
	return fmt.Errorf("%q is not one of %s", name, strings.Join(DriverNames(), ", "))
}

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
