package api_test

import (
	"fmt"
	"sort"
	"testing"

	"github.com/wildcathub/wildcat/core/api"
	"github.com/wildcathub/wildcat/core/api/openapicheck"
)

// TestOpenAPIExamplesMatchTheirSchemas validates every example of the
// document against its schema, read closed (openapicheck): a request
// example a client copies must be a valid request, and a response example
// may show only declared fields, with their types. (core/daemon checks the
// daemon's real answers the same way.)
func TestOpenAPIExamplesMatchTheirSchemas(t *testing.T) {
	c, err := openapicheck.Compile(api.Document())
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, op := range api.Operations() {
		names := make([]string, 0, len(op.BodyExamples))
		for n := range op.BodyExamples {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, name := range names {
			if !openapicheck.JSONMediaType(op.BodyType) {
				continue
			}
			if err := c.CheckValue(op.Method, op.Path, "", op.BodyType, op.BodyExamples[name]); err != nil {
				t.Errorf("%s %s request example %q: %v", op.Method, op.Path, name, err)
			}
			checked++
		}
		if op.ResponseEx != nil {
			if err := c.CheckValue(op.Method, op.Path, fmt.Sprint(op.Status), "application/json", op.ResponseEx); err != nil {
				t.Errorf("%s %s response example: %v", op.Method, op.Path, err)
			}
			checked++
		}
	}
	if checked < 30 {
		t.Fatalf("only %d examples checked", checked)
	}
}

// TestOpenAPICheckerReadsSchemasClosed: an undeclared field, a wrong type
// and an undocumented status each fail the check; a declared map takes any
// key.
func TestOpenAPICheckerReadsSchemasClosed(t *testing.T) {
	c, err := openapicheck.Compile(api.Document())
	if err != nil {
		t.Fatal(err)
	}
	const js = "application/json"
	ok := `{"id":"crm","url":"https://x.example","events":["*"],"accounts":["*"],"sources":["*"],"description":"","headers":{"Any-Name":"v"},"enabled":true,"rateLimit":0,"source":"api","createdAt":"2026-11-25T12:05:00Z","updatedAt":"2026-11-25T12:05:00Z"}`
	for _, tc := range []struct {
		name, method, path string
		status             int
		ct, body           string
		valid              bool
	}{
		{"declared fields and a map", "GET", "/v1/webhooks/crm", 200, js, ok, true},
		{"undeclared field", "GET", "/v1/webhooks/crm", 200, js, ok[:len(ok)-1] + `,"surprise":1}`, false},
		{"wrong type", "GET", "/v1/webhooks/crm", 200, js, `{"id":"crm","url":"u","events":[],"accounts":[],"enabled":"yes"}`, false},
		{"missing required field", "GET", "/v1/webhooks/crm", 200, js, `{"id":"crm"}`, false},
		{"undocumented status", "GET", "/v1/webhooks/crm", 418, js, `{}`, false},
		{"undocumented media type", "GET", "/v1/webhooks/crm", 200, "text/html", `<p>`, false},
		{"problem answer", "GET", "/v1/webhooks/nope", 404, "application/problem+json", `{"type":"urn:wildcat:problem:not-found","title":"Not found","status":404}`, true},
		{"undeclared problem field", "GET", "/v1/webhooks/nope", 404, "application/problem+json", `{"type":"t","title":"t","status":404,"extra":true}`, false},
		{"literal segment wins over a variable", "POST", "/v1/deliveries/replay", 200, js, `{"count":1}`, true},
		{"a route the document does not list", "GET", "/healthz", 200, js, `{"status":"ok"}`, true},
		{"a method the route does not serve", "PUT", "/v1/webhooks/crm", 405, "application/problem+json", `{}`, true},
		{"no content", "DELETE", "/v1/webhooks/crm", 204, "", ``, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := c.CheckResponse(tc.method, tc.path, tc.status, tc.ct, []byte(tc.body))
			if (err == nil) != tc.valid {
				t.Fatalf("valid %v, want %v: %v", err == nil, tc.valid, err)
			}
		})
	}
}
