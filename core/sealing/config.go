package sealing

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
	"strings"
)

// The configuration keys the keyring is read from (core/config's
// Encryption).
const (
	KeyFileKey   = "encryption.key_file"
	KeysKey      = "encryption.keys"
	ActiveKeyKey = "encryption.active_key"
)

// ConfigError is a keyring configuration problem and the key it is in.
type ConfigError struct {
	Key     string
	Problem string
}

func (e *ConfigError) Error() string { return e.Key + ": " + e.Problem }

// Load builds the keyring from the configuration: the keys in keyFile
// (one "id:base64key" a line; blank lines and # comments skipped) and in
// keys ("id:base64key" separated by commas or whitespace, typically from
// WILDCAT_ENCRYPTION_KEYS), active naming the key that writes ("": the
// last one listed, file before keys). No keys at all: nil, encryption off.
func Load(keyFile, keys, active string) (*Keyring, error) {
	var all []Key
	if keyFile != "" {
		b, err := os.ReadFile(keyFile)
		if err != nil {
			return nil, &ConfigError{Key: KeyFileKey, Problem: fmt.Sprintf("read key file: %v", err)}
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		line := 0
		for sc.Scan() {
			line++
			s := strings.TrimSpace(sc.Text())
			if s == "" || strings.HasPrefix(s, "#") {
				continue
			}
			k, err := parseKey(s)
			if err != nil {
				return nil, &ConfigError{Key: KeyFileKey, Problem: fmt.Sprintf("%s line %d: %v", keyFile, line, err)}
			}
			all = append(all, k)
		}
		if len(all) == 0 {
			return nil, &ConfigError{Key: KeyFileKey, Problem: fmt.Sprintf("%s holds no key (write id:base64key lines)", keyFile)}
		}
	}
	for _, s := range strings.FieldsFunc(keys, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' }) {
		k, err := parseKey(s)
		if err != nil {
			return nil, &ConfigError{Key: KeysKey, Problem: err.Error()}
		}
		all = append(all, k)
	}
	kr, err := New(all, active)
	if err != nil {
		key := KeysKey
		switch {
		case active != "" && strings.HasPrefix(err.Error(), "active key"):
			key = ActiveKeyKey
		case keyFile != "" && keys == "":
			key = KeyFileKey
		}
		return nil, &ConfigError{Key: key, Problem: err.Error()}
	}
	return kr, nil
}

// parseKey reads "id:base64key" and never echoes the secret.
func parseKey(s string) (Key, error) {
	id, secret, ok := strings.Cut(s, ":")
	if !ok {
		return Key{}, fmt.Errorf("a key is written id:base64key")
	}
	if !ValidKeyID(id) {
		return Key{}, fmt.Errorf("key id %q: want 1 to %d of A-Z a-z 0-9 _ . -", id, maxKeyIDSize)
	}
	b, err := base64.StdEncoding.DecodeString(secret)
	if err != nil {
		return Key{}, fmt.Errorf("key %q: not base64 (make one with: head -c 32 /dev/urandom | base64)", id)
	}
	if len(b) != KeySize {
		return Key{}, fmt.Errorf("key %q: has %d bytes, AES-256 needs %d (make one with: head -c 32 /dev/urandom | base64)", id, len(b), KeySize)
	}
	return Key{ID: id, Secret: b}, nil
}
