package config

import (
	"errors"
	"strings"
	"testing"
)

// TestAuthOffOnlyOnLoopback: http.auth false is accepted on loopback
// addresses only; anything others can reach is refused naming http.auth.
func TestAuthOffOnlyOnLoopback(t *testing.T) {
	for addr, loopback := range map[string]bool{
		"127.0.0.1:8080": true, "localhost:8080": true, "[::1]:8080": true, "127.1.2.3:0": true,
		"0.0.0.0:8080": false, ":8080": false, "[::]:8080": false, "192.168.1.5:8080": false, "api.example.com:443": false,
		"[::ffff:127.0.0.1]:80": true,
	} {
		if got := IsLoopback(addr); got != loopback {
			t.Errorf("IsLoopback(%q) = %v", addr, got)
		}
		c := Defaults()
		c.HTTP.Addr, c.HTTP.Auth = addr, false
		err := c.Validate()
		var ce *Error
		if loopback && err != nil {
			t.Errorf("%s without keys: %v", addr, err)
		}
		if !loopback && (!errors.As(err, &ce) || ce.Key != "http.auth" || !strings.Contains(ce.Problem, "loopback")) {
			t.Errorf("%s without keys: %v", addr, err)
		}
		c.HTTP.Auth = true
		if err := c.Validate(); err != nil {
			t.Errorf("%s with keys: %v", addr, err)
		}
	}
}
