package api

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
)

// FuzzDecodeJSON: whatever the body, the request decoder answers a value
// or a 4xx problem naming a field — never a panic, never a 500.
func FuzzDecodeJSON(f *testing.F) {
	f.Add([]byte(`{"to":"+15551234567","text":"hi"}`), "application/json")
	f.Add([]byte(`{"to":"x","media":{"url":"https://example.com/a.png"},"caption":"c","mentions":["a"]}`), "application/json; charset=utf-8")
	f.Add([]byte(`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`), "application/json")
	f.Add([]byte(`{"text":"\ud800","unknown":1}`), "application/merge-patch+json")
	f.Add([]byte(`{"to":1} {}`), "text/plain")
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		r := httptest.NewRequest(http.MethodPost, "/v1/x", bytes.NewReader(body))
		r.Header.Set("Content-Type", contentType)
		r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, 1<<16)
		var req sendRequest
		err := DecodeJSON(r, &req)
		if err == nil {
			if checkLengths(&req) != nil {
				return
			}
			return
		}
		var ae *Error
		if !errors.As(err, &ae) || ae.Status < 400 || ae.Status >= 500 || ae.Field == "" {
			t.Fatalf("decoder error is not a 4xx problem naming a field: %#v", err)
		}
	})
}
