// Package accountid holds the rules for account ids and driver names. It is
// a leaf package so that both the configuration (which imports the pipeline,
// and through it the session package) and the session package can check
// them without an import cycle; config re-exports them.
package accountid

import (
	"fmt"
	"slices"
	"strings"

	"github.com/wildcathub/wildcat/core/bounded"
)

// Pattern is the shape of an account id, wherever one is chosen
// (config.yaml or the REST API). Ids become parts of collection names
// (auth_{id}) and of event ids joined with ':', so they are kept to
// lower-case letters, digits, '_' and '-'.
var Pattern = bounded.MustCompile(`^[a-z0-9][a-z0-9_-]*$`, 1, 63)

// Driver names an account may use. A known driver may still be missing
// from a build (the daemon then refuses to connect such an account), but an
// unknown one is a typo.
const (
	DriverWhatsApp = "whatsapp"
	DriverSim      = "sim"
)

// DriverNames lists the known drivers in a stable order.
func DriverNames() []string { return []string{DriverWhatsApp, DriverSim} }

// Reserved cannot name an account: auth_lid_map is the WhatsApp auth
// store's shared collection, not an account's auth_{id}.
const Reserved = "lid_map"

// Check explains why id cannot name an account, or returns nil.
func Check(id string) error {
	if id == Reserved {
		return fmt.Errorf("%q is reserved (its auth collection would clash with the shared LID map); choose another id", id)
	}
	if Pattern.MatchString(id) {
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
