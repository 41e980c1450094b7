package rules

import (
	"fmt"
	"strings"
	"time"
)

// ruleConfig is what the engine itself reads from a rule's config block;
// the whole block is also the rule's ctx.config.
//
//	config:
//	  20-business-hours:
//	    timeout: 100ms          # per handler call; default 50ms
//	    timezone: Europe/Berlin # default zone of ctx.time; default UTC
//	    http:
//	      allow: [api.example.com, "*.example.org"]
//	      maxBytes: 1048576     # largest response body ctx.http.fetch reads; at most 16 MiB
//	      allowPrivate: false   # let listed hosts be loopback/private addresses
type ruleConfig struct {
	timeout      time.Duration
	timezone     *time.Location
	allow        []string
	allowPrivate bool
	maxBytes     int64
	raw          map[string]any
}

// MaxTimeout caps a rule's configured timeout: a handler holds its chat's
// queue for as long.
const MaxTimeout = 30 * time.Second

const defaultMaxFetchBytes = 1 << 20

// MaxFetchBytes caps http.maxBytes: a response body is read whole into
// the daemon's memory (and again as a JS string) before the rule sees it.
const MaxFetchBytes = MaxMediaBytes

func parseRuleConfig(raw map[string]any, defaultTimeout time.Duration) (*ruleConfig, error) {
	rc := &ruleConfig{timeout: defaultTimeout, timezone: time.UTC, maxBytes: defaultMaxFetchBytes, raw: raw}
	if v, ok := raw["timeout"]; ok {
		d, err := durationValue(v, time.Millisecond)
		if err != nil {
			return nil, fmt.Errorf("timeout: %w", err)
		}
		if d <= 0 || d > MaxTimeout {
			return nil, fmt.Errorf("timeout: %s is not between 0 and %s", d, MaxTimeout)
		}
		rc.timeout = d
	}
	if v, ok := raw["timezone"]; ok {
		name, _ := v.(string)
		loc, err := loadLocation(name)
		if err != nil {
			return nil, fmt.Errorf("timezone: %w", err)
		}
		rc.timezone = loc
	}
	if v, ok := raw["http"]; ok {
		h, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("http: expected a block with allow and maxBytes, got %T", v)
		}
		for k, v := range h {
			switch k {
			case "allow":
				list, ok := v.([]any)
				if !ok {
					return nil, fmt.Errorf("http.allow: expected a list of host names, got %T", v)
				}
				for _, item := range list {
					host, ok := item.(string)
					if !ok || host == "" || strings.ContainsAny(host, "/:@ ") {
						return nil, fmt.Errorf("http.allow: %v is not a host name (e.g. api.example.com or *.example.com)", item)
					}
					rc.allow = append(rc.allow, strings.ToLower(host))
				}
			case "maxBytes":
				n, ok := toInt64(v)
				if !ok || n <= 0 || n > MaxFetchBytes {
					return nil, fmt.Errorf("http.maxBytes: expected a number of bytes from 1 to %d, got %v", MaxFetchBytes, v)
				}
				rc.maxBytes = n
			case "allowPrivate":
				b, ok := v.(bool)
				if !ok {
					return nil, fmt.Errorf("http.allowPrivate: expected true or false, got %v", v)
				}
				rc.allowPrivate = b
			default:
				return nil, fmt.Errorf("http: unknown key %q (known: allow, maxBytes, allowPrivate)", k)
			}
		}
	}
	return rc, nil
}

// durationValue reads a duration written as a Go duration string ("10m",
// "1h30m") or as a number of units.
func durationValue(v any, unit time.Duration) (time.Duration, error) {
	switch x := v.(type) {
	case string:
		d, err := time.ParseDuration(x)
		if err != nil {
			return 0, fmt.Errorf("%q is not a duration like 500ms, 10m or 2h", x)
		}
		return d, nil
	case time.Duration:
		return x, nil
	}
	if n, ok := toFloat64(v); ok {
		return time.Duration(n * float64(unit)), nil
	}
	return 0, fmt.Errorf("%v (%T) is not a duration", v, v)
}

func toFloat64(v any) (float64, bool) {
	switch x := v.(type) {
	case int:
		return float64(x), true
	case int32:
		return float64(x), true
	case int64:
		return float64(x), true
	case uint64:
		return float64(x), true
	case float32:
		return float64(x), true
	case float64:
		return x, true
	}
	return 0, false
}

func toInt64(v any) (int64, bool) {
	f, ok := toFloat64(v)
	if !ok || f != float64(int64(f)) {
		return 0, false
	}
	return int64(f), true
}
