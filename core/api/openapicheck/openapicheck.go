// Package openapicheck checks HTTP answers and example bodies against an
// OpenAPI 3.1 document, reading its schemas closed: an object schema that
// does not say what its other properties are (additionalProperties)
// accepts only the properties it lists. A field the daemon answers but the
// document does not declare therefore fails, as does a wrong type or a
// missing required field. A map says so with additionalProperties.
//
// OpenAPI 3.1 schemas are JSON Schema 2020-12, so a JSON Schema validator
// (santhosh-tekuri/jsonschema, the engine of pb33f's libopenapi-validator)
// checks the bodies; finding the operation, status and media type of an
// answer is all the OpenAPI part there is. Tests use it (core/daemon checks
// every answer its test client receives); the daemon does not.
package openapicheck

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"sort"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Checker holds the compiled schemas of a document.
type Checker struct {
	ops []*operation
}

type operation struct {
	method   string
	template string
	segs     []string
	// request body schemas by media type.
	request map[string]*jsonschema.Schema
	// responses by status code, then media type. A nil schema means the
	// body is not JSON or has no schema, and is not checked.
	responses map[string]map[string]*jsonschema.Schema
}

// Compile compiles every request and response schema of doc.
func Compile(doc map[string]any) (*Checker, error) {
	// Through JSON, so that the document is plain JSON values (numbers as
	// json.Number), as the compiler wants, and a copy that closing cannot
	// change.
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	raw, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	root, ok := raw.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("the document is not a JSON object")
	}
	Close(root)

	// Each schema is copied under $defs, a schema location the compiler
	// knows, and compiled from there; its $refs still resolve to
	// #/components/schemas.
	defs := map[string]any{}
	root["$defs"] = defs
	type pending struct {
		into map[string]*jsonschema.Schema
		mt   string
		def  string
		what string
	}
	var todo []pending
	add := func(into map[string]*jsonschema.Schema, content any, what string) {
		c, _ := content.(map[string]any)
		for mt, m := range c {
			into[mt] = nil
			schema, ok := m.(map[string]any)["schema"]
			if !ok || !JSONMediaType(mt) {
				continue
			}
			def := fmt.Sprintf("s%d", len(todo))
			defs[def] = schema
			todo = append(todo, pending{into: into, mt: mt, def: def, what: what + " " + mt})
		}
	}
	checker := &Checker{}
	paths, _ := root["paths"].(map[string]any)
	for template, item := range paths {
		for method, o := range item.(map[string]any) {
			op := &operation{method: strings.ToUpper(method), template: template, segs: strings.Split(template, "/"),
				request: map[string]*jsonschema.Schema{}, responses: map[string]map[string]*jsonschema.Schema{}}
			what := op.method + " " + template
			om, _ := o.(map[string]any)
			if rb, ok := om["requestBody"].(map[string]any); ok {
				add(op.request, rb["content"], what+" request")
			}
			responses, _ := om["responses"].(map[string]any)
			for status, resp := range responses {
				op.responses[status] = map[string]*jsonschema.Schema{}
				add(op.responses[status], resp.(map[string]any)["content"], what+" "+status)
			}
			checker.ops = append(checker.ops, op)
		}
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	const loc = "urn:wildcat:openapi"
	if err := c.AddResource(loc, root); err != nil {
		return nil, err
	}
	for _, p := range todo {
		s, err := c.Compile(loc + "#/$defs/" + p.def)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.what, err)
		}
		p.into[p.mt] = s
	}
	return checker, nil
}

// Close sets additionalProperties: false on every object schema of v that
// does not say what its other properties are. Examples are data, not
// schemas, and are left alone.
func Close(v any) {
	switch v := v.(type) {
	case map[string]any:
		_, hasProps := v["properties"]
		isObject := v["type"] == "object"
		if types, ok := v["type"].([]any); ok {
			for _, t := range types {
				isObject = isObject || t == "object"
			}
		}
		if _, set := v["additionalProperties"]; (hasProps || isObject) && !set {
			v["additionalProperties"] = false
		}
		for k, child := range v {
			if k == "example" || k == "examples" {
				continue
			}
			Close(child)
		}
	case []any:
		for _, child := range v {
			Close(child)
		}
	}
}

// JSONMediaType reports whether mt is JSON: application/json or a +json
// type such as application/problem+json.
func JSONMediaType(mt string) bool { return mt == "application/json" || strings.HasSuffix(mt, "+json") }

// find returns the documented operation of method and path (escaped, as
// sent): the template with the most literal segments among those that
// match, or nil.
func (c *Checker) find(method, path string) *operation {
	segs := strings.Split(path, "/")
	var best *operation
	bestLiterals := -1
	for _, op := range c.ops {
		if op.method != method || len(op.segs) != len(segs) {
			continue
		}
		literals, match := 0, true
		for j, seg := range op.segs {
			if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
				match = match && segs[j] != ""
				continue
			}
			if seg != segs[j] {
				match = false
				break
			}
			literals++
		}
		if match && literals > bestLiterals {
			best, bestLiterals = op, literals
		}
	}
	return best
}

// CheckResponse answers why an answer to method and path (the request
// URL's escaped path) does not match the document, or nil. An answer to a
// path and method the document does not list (the router's 404 and 405 for
// unknown routes, /healthz) is not checked.
func (c *Checker) CheckResponse(method, path string, status int, contentType string, body []byte) error {
	head := method == http.MethodHead
	if head {
		method = http.MethodGet
	}
	op := c.find(method, path)
	if op == nil {
		return nil
	}
	where := fmt.Sprintf("%s %s answered %d", method, op.template, status)
	content, ok := op.responses[fmt.Sprint(status)]
	if !ok {
		return fmt.Errorf("%s, a status the OpenAPI document does not list for it: %s", where, clip(body))
	}
	if len(content) == 0 {
		if len(body) > 0 {
			return fmt.Errorf("%s with a body the OpenAPI document does not describe: %s", where, clip(body))
		}
		return nil
	}
	if head {
		return nil
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return fmt.Errorf("%s with Content-Type %q: %v", where, contentType, err)
	}
	schema, ok := content[mt]
	if !ok {
		if _, any := content["*/*"]; !any {
			return fmt.Errorf("%s with Content-Type %s; the OpenAPI document lists %v", where, mt, keys(content))
		}
	}
	if schema == nil {
		return nil
	}
	if err := validate(schema, body); err != nil {
		return fmt.Errorf("%s (%s) with a body that does not match the OpenAPI document: %w", where, mt, err)
	}
	return nil
}

// CheckValue validates v (a Go value, marshalled to JSON) against the
// schema of an operation's request body (status "") or response (status
// "200", "404", …) of media type mt. The operation is named by its
// template, e.g. GET /v1/accounts/{id}.
func (c *Checker) CheckValue(method, template, status, mt string, v any) error {
	var op *operation
	for _, o := range c.ops {
		if o.method == method && o.template == template {
			op = o
		}
	}
	if op == nil {
		return fmt.Errorf("%s %s is not documented", method, template)
	}
	content := op.request
	if status != "" {
		content = op.responses[status]
	}
	schema, ok := content[mt]
	if !ok {
		return fmt.Errorf("%s %s %s documents no %s", method, template, status, mt)
	}
	if schema == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return validate(schema, b)
}

func validate(schema *jsonschema.Schema, body []byte) error {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("not JSON (%v): %s", err, clip(body))
	}
	if err := schema.Validate(inst); err != nil {
		return fmt.Errorf("%v\nbody: %s", err, clip(body))
	}
	return nil
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func clip(b []byte) string {
	if len(b) > 2000 {
		return string(b[:2000]) + "…"
	}
	return string(b)
}
