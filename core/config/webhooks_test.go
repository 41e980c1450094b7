package config

import (
	"testing"
	"time"
)

// The webhooks block decodes, declared endpoints included, and the
// allow-private switch can be set from the environment.
func TestWebhooksDecode(t *testing.T) {
	yaml := `webhooks:
  timeout: 20s
  endpoints:
    - id: crm
      url: https://crm.example.com/hooks/wildcat
      events: ["message.*"]
      accounts: [acme]
      headers: {X-Api-Key: k1}
      enabled: false
      rate_limit: 5
pipeline:
  - {name: hooks, sink: webhooks}
`
	cfg, err := Load(Source{Path: writeFile(t, yaml), Environ: []string{"WILDCAT_WEBHOOKS_ALLOW_PRIVATE_TARGETS=true"}})
	if err != nil {
		t.Fatal(err)
	}
	w := cfg.Webhooks
	if !w.AllowPrivateTargets || w.Timeout != 20*time.Second || w.DisableAfter != 120*time.Hour || w.Plugin != "webhook" {
		t.Fatalf("webhooks: %+v", w)
	}
	if len(w.Endpoints) != 1 {
		t.Fatalf("endpoints: %+v", w.Endpoints)
	}
	e := w.Endpoints[0]
	if e.ID != "crm" || e.URL != "https://crm.example.com/hooks/wildcat" || e.Events[0] != "message.*" || e.Accounts[0] != "acme" ||
		e.Headers["X-Api-Key"] != "k1" || e.Enabled == nil || *e.Enabled || e.RateLimit != 5 {
		t.Fatalf("endpoint: %+v", e)
	}
}
