package daemon_test

import (
	"net/http"
	"sync"
	"testing"

	"github.com/wildcathub/wildcat/core/api"
	"github.com/wildcathub/wildcat/core/api/openapicheck"
)

// Every answer the test client receives (client.do) is checked against the
// OpenAPI document, read closed (see openapicheck): the status, the media
// type and every field of a JSON body must be documented, with its type.
// So each daemon test that calls a route also checks the document's
// description of the answers it got.

var (
	specOnce    sync.Once
	specChecker *openapicheck.Checker
	specErr     error
	// specReported deduplicates failures: a poll loop gets the same answer
	// many times.
	specReported sync.Map
)

// checkAgainstSpec reports, once per test and failure, an answer that does
// not match the OpenAPI document.
func checkAgainstSpec(t testing.TB, req *http.Request, status int, header http.Header, body []byte) {
	t.Helper()
	specOnce.Do(func() { specChecker, specErr = openapicheck.Compile(api.Document()) })
	if specErr != nil {
		t.Fatalf("OpenAPI document: %v", specErr)
	}
	// Routed on the escaped path: a %2F stays in its segment.
	err := specChecker.CheckResponse(req.Method, req.URL.EscapedPath(), status, header.Get("Content-Type"), body)
	if err == nil {
		return
	}
	if _, seen := specReported.LoadOrStore(t.Name()+"\x00"+err.Error(), true); !seen {
		t.Errorf("%v\n(the OpenAPI document is core/api/openapi.go)", err)
	}
}
