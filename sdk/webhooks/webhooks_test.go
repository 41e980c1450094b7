package webhooks_test

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/sdk/webhooks"
)

// The test vector of the Standard Webhooks reference libraries.
const (
	specSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	specID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	specTS     = 1614265330
	specBody   = `{"test": 2432232314}`
	specSig    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func headers(id string, ts int64, sig string) http.Header {
	h := http.Header{}
	h.Set(webhooks.HeaderID, id)
	h.Set(webhooks.HeaderTimestamp, itoa(ts))
	h.Set(webhooks.HeaderSignature, sig)
	return h
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestSignMatchesTheSpecVector(t *testing.T) {
	sig, err := webhooks.Sign(specSecret, specID, time.Unix(specTS, 0), []byte(specBody))
	if err != nil {
		t.Fatal(err)
	}
	if sig != specSig {
		t.Fatalf("Sign = %s, want %s", sig, specSig)
	}
	now := time.Unix(specTS, 0).Add(4 * time.Minute)
	if err := webhooks.VerifyAt(specSecret, headers(specID, specTS, specSig), []byte(specBody), now); err != nil {
		t.Fatalf("VerifyAt: %v", err)
	}
}

func TestVerifyRefuses(t *testing.T) {
	body := []byte(specBody)
	at := time.Unix(specTS, 0)
	other := webhooks.NewSecret()
	otherSig, _ := webhooks.Sign(other, specID, at, body)
	tests := []struct {
		name    string
		secret  string
		h       http.Header
		body    []byte
		now     time.Time
		wantErr error
	}{
		{"tampered body", specSecret, headers(specID, specTS, specSig), []byte(`{"test": 2432232315}`), at, webhooks.ErrSignature},
		{"other id", specSecret, headers("msg_other", specTS, specSig), body, at, webhooks.ErrSignature},
		{"wrong secret", specSecret, headers(specID, specTS, otherSig), body, at, webhooks.ErrSignature},
		{"too old", specSecret, headers(specID, specTS, specSig), body, at.Add(5*time.Minute + time.Second), webhooks.ErrTimestamp},
		{"from the future", specSecret, headers(specID, specTS, specSig), body, at.Add(-5*time.Minute - time.Second), webhooks.ErrTimestamp},
		{"no signature", specSecret, headers(specID, specTS, ""), body, at, webhooks.ErrHeaders},
		{"v2 only", specSecret, headers(specID, specTS, "v2,"+strings.TrimPrefix(specSig, "v1,")), body, at, webhooks.ErrSignature},
		{"bad secret", "whsec_!!!", headers(specID, specTS, specSig), body, at, webhooks.ErrSecret},
	}
	for _, tt := range tests {
		if err := webhooks.VerifyAt(tt.secret, tt.h, tt.body, tt.now); !errors.Is(err, tt.wantErr) {
			t.Errorf("%s: got %v, want %v", tt.name, err, tt.wantErr)
		}
	}
}

func TestRotationSignsWithBoth(t *testing.T) {
	oldS, newS := webhooks.NewSecret(), webhooks.NewSecret()
	if oldS == newS || !strings.HasPrefix(newS, webhooks.SecretPrefix) || webhooks.ValidSecret(newS) != nil {
		t.Fatalf("NewSecret: %q %q", oldS, newS)
	}
	now := time.Now()
	body := []byte(`{"type":"message.received"}`)
	both, err := webhooks.SignAll([]string{newS, oldS}, "acme:1", now, body)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(strings.Fields(both)); n != 2 {
		t.Fatalf("want two signatures, got %q", both)
	}
	h := headers("acme:1", now.Unix(), both)
	for _, s := range []string{oldS, newS} {
		if err := webhooks.VerifyAt(s, h, body, now); err != nil {
			t.Errorf("secret %s: %v", s, err)
		}
	}
	if err := webhooks.VerifyAt(webhooks.NewSecret(), h, body, now); !errors.Is(err, webhooks.ErrSignature) {
		t.Errorf("a third secret verified: %v", err)
	}
}

func TestValidSecret(t *testing.T) {
	for _, s := range []string{"", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_short", "whsec_" + strings.Repeat("A", 200)} {
		if webhooks.ValidSecret(s) == nil {
			t.Errorf("ValidSecret(%q) = nil", s)
		}
	}
}
