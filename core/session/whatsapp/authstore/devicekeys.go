package authstore

import (
	"fmt"
	"strconv"

	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/util/keys"

	"github.com/wildcathub/wildcat/core/sealing"
)

// The linked device's own secrets, as both engines store them: the private
// halves of its noise, identity and signed pre-key pairs, its ADV secret
// and its one-time pre-keys. Each is sealed (sealing) under its own
// associated data, so a sealed key cannot pass for another; public keys are
// derived from the private ones when read.
//
// A stored key of exactly keyLen bytes is a key as it is: written before
// encryption was on (or by an older build, or by sqlstore) or written with
// it off. A sealed or escaped value is never that long.

const keyLen = 32

// DeviceKeys are a device's private keys as stored: sealed, or as they are
// when written with encryption off. The engine-to-engine copy moves them
// as they are.
type DeviceKeys struct {
	Noise, Identity, SignedPreKey, AdvSecret []byte
}

// Associated data of each kind of key.
var (
	aadNoise     = []byte("whatsapp device noise key")
	aadIdentity  = []byte("whatsapp device identity key")
	aadSignedPre = []byte("whatsapp device signed pre-key")
	aadAdv       = []byte("whatsapp device adv secret")
)

func aadPreKey(id uint32) []byte {
	return []byte("whatsapp pre-key " + strconv.FormatUint(uint64(id), 10))
}

// sealKey seals a private key for storing.
func sealKey(k *sealing.Keyring, what string, aad, b []byte) ([]byte, error) {
	out, err := k.Seal(b, aad)
	if err != nil {
		return nil, fmt.Errorf("seal %s: %w", what, err)
	}
	return out, nil
}

// openKey returns the key stored as b.
func openKey(k *sealing.Keyring, what string, aad, b []byte) ([]byte, error) {
	if len(b) == keyLen {
		return b, nil
	}
	p, err := k.Open(b, aad)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", what, err)
	}
	return p, nil
}

// staleKey reports whether a stored key is not sealed under k's active key.
func staleKey(k *sealing.Keyring, b []byte) bool {
	return k.Enabled() && (len(b) == keyLen || k.Stale(b))
}

// sealDeviceKeys seals dev's private keys for storing.
func sealDeviceKeys(k *sealing.Keyring, dev *store.Device) (DeviceKeys, error) {
	if dev.NoiseKey == nil || dev.IdentityKey == nil || dev.SignedPreKey == nil || dev.SignedPreKey.Priv == nil {
		return DeviceKeys{}, fmt.Errorf("device keys are missing")
	}
	var out DeviceKeys
	var err error
	if out.Noise, err = sealKey(k, "noise key", aadNoise, dev.NoiseKey.Priv[:]); err != nil {
		return DeviceKeys{}, err
	}
	if out.Identity, err = sealKey(k, "identity key", aadIdentity, dev.IdentityKey.Priv[:]); err != nil {
		return DeviceKeys{}, err
	}
	if out.SignedPreKey, err = sealKey(k, "signed pre-key", aadSignedPre, dev.SignedPreKey.Priv[:]); err != nil {
		return DeviceKeys{}, err
	}
	if out.AdvSecret, err = sealKey(k, "adv secret", aadAdv, dev.AdvSecretKey); err != nil {
		return DeviceKeys{}, err
	}
	return out, nil
}

// openDeviceKeys sets dev's key pairs and ADV secret from their stored
// form. dev.SignedPreKey's id and signature are kept.
func openDeviceKeys(k *sealing.Keyring, stored DeviceKeys, dev *store.Device) error {
	pair := func(what string, aad, b []byte) (*keys.KeyPair, error) {
		p, err := openKey(k, what, aad, b)
		if err != nil {
			return nil, err
		}
		if len(p) != keyLen {
			return nil, fmt.Errorf("%s: %w", what, ErrInvalidLength)
		}
		return keys.NewKeyPairFromPrivateKey([keyLen]byte(p)), nil
	}
	noise, err := pair("noise key", aadNoise, stored.Noise)
	if err != nil {
		return err
	}
	identity, err := pair("identity key", aadIdentity, stored.Identity)
	if err != nil {
		return err
	}
	signed, err := pair("signed pre-key", aadSignedPre, stored.SignedPreKey)
	if err != nil {
		return err
	}
	adv, err := openKey(k, "adv secret", aadAdv, stored.AdvSecret)
	if err != nil {
		return err
	}
	dev.NoiseKey, dev.IdentityKey, dev.AdvSecretKey = noise, identity, adv
	pre := &keys.PreKey{KeyPair: *signed}
	if dev.SignedPreKey != nil {
		pre.KeyID, pre.Signature = dev.SignedPreKey.KeyID, dev.SignedPreKey.Signature
	}
	dev.SignedPreKey = pre
	return nil
}

// withoutKeys is dev without its private keys: what the copy's Account
// carries beside DeviceKeys. The signed pre-key keeps its id and signature.
func withoutKeys(dev *store.Device) *store.Device {
	out := *dev
	out.NoiseKey, out.IdentityKey, out.AdvSecretKey = nil, nil, nil
	if dev.SignedPreKey != nil {
		out.SignedPreKey = &keys.PreKey{KeyID: dev.SignedPreKey.KeyID, Signature: dev.SignedPreKey.Signature}
	}
	return &out
}

// sealPreKey seals a one-time pre-key for storing.
func sealPreKey(k *sealing.Keyring, pk *keys.PreKey) ([]byte, error) {
	return sealKey(k, fmt.Sprintf("pre-key %d", pk.KeyID), aadPreKey(pk.KeyID), pk.Priv[:])
}

// openPreKey returns the pre-key id stored as b.
func openPreKey(k *sealing.Keyring, id uint32, b []byte) (*keys.PreKey, error) {
	what := fmt.Sprintf("pre-key %d", id)
	p, err := openKey(k, what, aadPreKey(id), b)
	if err != nil {
		return nil, err
	}
	if len(p) != keyLen {
		return nil, fmt.Errorf("%s: %w", what, ErrInvalidLength)
	}
	return &keys.PreKey{KeyPair: *keys.NewKeyPairFromPrivateKey([keyLen]byte(p)), KeyID: id}, nil
}

// resealKeys re-seals under k's active key the device's and pre-keys'
// stored keys that are not sealed under it, and reports whether any was.
func resealKeys(k *sealing.Keyring, dk *DeviceKeys, pre []PreKey) (bool, error) {
	changed := false
	re := func(what string, aad []byte, b *[]byte) error {
		if *b == nil || !staleKey(k, *b) {
			return nil
		}
		p, err := openKey(k, what, aad, *b)
		if err != nil {
			return err
		}
		if *b, err = sealKey(k, what, aad, p); err != nil {
			return err
		}
		changed = true
		return nil
	}
	for _, f := range []struct {
		what string
		aad  []byte
		b    *[]byte
	}{
		{"noise key", aadNoise, &dk.Noise},
		{"identity key", aadIdentity, &dk.Identity},
		{"signed pre-key", aadSignedPre, &dk.SignedPreKey},
		{"adv secret", aadAdv, &dk.AdvSecret},
	} {
		if err := re(f.what, f.aad, f.b); err != nil {
			return false, err
		}
	}
	for i := range pre {
		if err := re(fmt.Sprintf("pre-key %d", pre[i].ID), aadPreKey(pre[i].ID), &pre[i].Key); err != nil {
			return false, err
		}
	}
	return changed, nil
}
