package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// Error is the one error type handlers return to answer a client with
// something other than 500. It is rendered as an RFC 9457 problem document
// (application/problem+json). Any other error becomes a logged 500 whose
// details stay out of the response.
type Error struct {
	Status int
	// Slug names the problem type; the document's "type" is urn:wildcat:problem:<slug>.
	Slug   string
	Title  string
	Detail string
	// Field is the offending request field in JSON-pointer-ish dotted form
	// ("to", "media.url", "body" for the body as a whole), when there is one.
	Field string
	// Err is an underlying cause for the log; never shown to the client.
	Err error
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("%d %s", e.Status, e.Title)
	if e.Field != "" {
		msg += " (" + e.Field + ")"
	}
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// ProblemType is the URI prefix of every problem type.
const ProblemType = "urn:wildcat:problem:"

// Problem is the wire form of an Error (RFC 9457).
type Problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail,omitempty"`
	Instance  string `json:"instance,omitempty"`
	Field     string `json:"field,omitempty"`
	RequestID string `json:"requestId,omitempty"`
}

// Invalid reports a request field whose value cannot be used (400).
func Invalid(field, format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Slug: "invalid-field", Title: "Invalid request field", Field: field, Detail: fmt.Sprintf(format, args...)}
}

// NotFound reports a missing resource (404).
func NotFound(what, id string) *Error {
	return &Error{Status: http.StatusNotFound, Slug: "not-found", Title: "Not found", Detail: fmt.Sprintf("%s %q does not exist", what, id)}
}

// Conflict reports a request that clashes with the resource's state (409).
func Conflict(format string, args ...any) *Error {
	return &Error{Status: http.StatusConflict, Slug: "conflict", Title: "Conflict", Detail: fmt.Sprintf(format, args...)}
}

// Unavailable reports a dependency that cannot answer right now (503).
func Unavailable(format string, args ...any) *Error {
	return &Error{Status: http.StatusServiceUnavailable, Slug: "unavailable", Title: "Service unavailable", Detail: fmt.Sprintf(format, args...)}
}

// writeProblem renders err; a non-*Error becomes an opaque 500.
func writeProblem(w http.ResponseWriter, r *http.Request, err error) *Error {
	var ae *Error
	if !errors.As(err, &ae) {
		ae = &Error{Status: http.StatusInternalServerError, Slug: "internal", Title: "Internal server error",
			Detail: "the server failed to handle this request; the request ID finds it in the log", Err: err}
	}
	p := Problem{
		Type:      ProblemType + ae.Slug,
		Title:     ae.Title,
		Status:    ae.Status,
		Detail:    ae.Detail,
		Instance:  r.URL.Path,
		Field:     ae.Field,
		RequestID: RequestID(r.Context()),
	}
	if p.Title == "" {
		p.Title = http.StatusText(ae.Status)
	}
	if ae.Slug == "" {
		p.Type = "about:blank"
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(ae.Status)
	_ = json.NewEncoder(w).Encode(p)
	return ae
}
