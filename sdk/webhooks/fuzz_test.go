package webhooks

import (
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// FuzzVerify: the verifier never panics on what a request carries, accepts
// exactly what was signed with the secret, and refuses it once the body,
// the id or the timestamp changes.
func FuzzVerify(f *testing.F) {
	now := time.Unix(1_790_000_000, 0)
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	f.Add("msg_1", int64(0), []byte(`{"type":"message.received"}`), "v1,AAAA", "1790000000")
	f.Add("", int64(-400), []byte{}, "", "")
	f.Add("a.b.c", int64(299), []byte("\x00\xff"), "v2,x v1,!!! v1", "-1")
	f.Add("id with spaces", int64(1<<40), []byte("x"), "v1,"+string(make([]byte, 100)), "99999999999999999999")
	f.Fuzz(func(t *testing.T, id string, skew int64, body []byte, sigHeader, tsHeader string) {
		// Arbitrary headers: an error or (by chance) success, never a panic.
		h := http.Header{}
		h.Set(HeaderID, id)
		h.Set(HeaderTimestamp, tsHeader)
		h.Set(HeaderSignature, sigHeader)
		_ = VerifyAt(secret, h, body, now)

		if id == "" || len(h.Get(HeaderID)) != len(id) {
			return // not a header value net/http would carry as is
		}
		ts := now.Add(time.Duration(skew%600) * time.Second)
		sig, err := Sign(secret, id, ts, body)
		if err != nil {
			t.Fatal(err)
		}
		h.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
		h.Set(HeaderSignature, sigHeader+" "+sig)
		err = VerifyAt(secret, h, body, now)
		fresh := now.Sub(ts) <= Tolerance && ts.Sub(now) <= Tolerance
		switch {
		case fresh && err != nil:
			t.Fatalf("a fresh signature was refused: %v", err)
		case !fresh && !errors.Is(err, ErrTimestamp):
			t.Fatalf("a stale signature: %v", err)
		}
		if !fresh {
			return
		}
		h.Set(HeaderSignature, sig)
		if err := VerifyAt(secret, h, append(body[:len(body):len(body)], '!'), now); !errors.Is(err, ErrSignature) {
			t.Fatalf("a changed body: %v", err)
		}
		h.Set(HeaderID, id+"x")
		if err := VerifyAt(secret, h, body, now); !errors.Is(err, ErrSignature) {
			t.Fatalf("a changed id: %v", err)
		}
	})
}
