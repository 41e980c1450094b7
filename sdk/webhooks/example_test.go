package webhooks_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/wildcathub/wildcat/sdk/webhooks"
)

// A receiver checks every request before trusting its body. Here Wildcat's
// side is played by a request signed by hand.
func ExampleVerify() {
	secret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" // from POST /v1/webhooks

	receiver := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "cannot read body", http.StatusBadRequest)
			return
		}
		if err := webhooks.Verify(secret, r.Header, body); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		// webhook-id is stable across retries: remember it to drop repeats.
		fmt.Println("verified", r.Header.Get(webhooks.HeaderID))
		w.WriteHeader(http.StatusNoContent)
	})

	body := `{"type":"message.received","timestamp":"2026-11-25T12:00:00Z","data":{}}`
	now := time.Now()
	sig, _ := webhooks.Sign(secret, "demo:3EB0C0FFEE000001", now, []byte(body))
	req := httptest.NewRequest(http.MethodPost, "/hooks/wildcat", strings.NewReader(body))
	req.Header.Set(webhooks.HeaderID, "demo:3EB0C0FFEE000001")
	req.Header.Set(webhooks.HeaderTimestamp, fmt.Sprint(now.Unix()))
	req.Header.Set(webhooks.HeaderSignature, sig)
	rec := httptest.NewRecorder()
	receiver.ServeHTTP(rec, req)
	fmt.Println(rec.Code)

	// A tampered body is refused.
	req = httptest.NewRequest(http.MethodPost, "/hooks/wildcat", strings.NewReader(strings.Replace(body, "received", "sent", 1)))
	req.Header = req.Header.Clone()
	req.Header.Set(webhooks.HeaderID, "demo:3EB0C0FFEE000001")
	req.Header.Set(webhooks.HeaderTimestamp, fmt.Sprint(now.Unix()))
	req.Header.Set(webhooks.HeaderSignature, sig)
	rec = httptest.NewRecorder()
	receiver.ServeHTTP(rec, req)
	fmt.Println(rec.Code)
	// Output:
	// verified demo:3EB0C0FFEE000001
	// 204
	// 401
}
