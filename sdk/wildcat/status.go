package wildcat

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// Rule is one loaded JavaScript rule and its counters.
type Rule struct {
	Name  string   `json:"name"`
	File  string   `json:"file"`
	Stage string   `json:"stage,omitempty"`
	Kinds []string `json:"kinds,omitempty"`
	// Version is a hash of the file's content as loaded.
	Version  string     `json:"version,omitempty"`
	LoadedAt *time.Time `json:"loadedAt,omitempty"`
	// LoadError is why the file did not load (with file:line), if it did not.
	LoadError string `json:"loadError,omitempty"`
	Calls     int64  `json:"calls"`
	Errors    int64  `json:"errors"`
	Timeouts  int64  `json:"timeouts"`
	P99Ns     int64  `json:"p99Ns"`
}

// PluginCalls counts one kind of call to a plugin.
type PluginCalls struct {
	Calls    int64 `json:"calls"`
	Errors   int64 `json:"errors"`
	Timeouts int64 `json:"timeouts"`
}

// Plugin is one configured plugin process and its health.
type Plugin struct {
	Name         string                 `json:"name"`
	Path         string                 `json:"path"`
	Plugin       string                 `json:"plugin,omitempty"`
	Version      string                 `json:"version,omitempty"`
	Description  string                 `json:"description,omitempty"`
	Capabilities []string               `json:"capabilities"`
	EventKinds   []string               `json:"eventKinds,omitempty"`
	State        string                 `json:"state"`
	PID          int                    `json:"pid,omitempty"`
	Restarts     int                    `json:"restarts"`
	StartedAt    *time.Time             `json:"startedAt,omitempty"`
	LastError    string                 `json:"lastError,omitempty"`
	LastErrorAt  *time.Time             `json:"lastErrorAt,omitempty"`
	Calls        map[string]PluginCalls `json:"calls"`
}

// Rules lists the loaded rules.
func (c *Client) Rules(ctx context.Context) ([]Rule, error) {
	var out struct {
		Rules []Rule `json:"rules"`
	}
	err := c.do(ctx, request{method: http.MethodGet, path: "/rules"}, &out)
	return out.Rules, err
}

// Plugins lists the configured plugins.
func (c *Client) Plugins(ctx context.Context) ([]Plugin, error) {
	var out struct {
		Plugins []Plugin `json:"plugins"`
	}
	err := c.do(ctx, request{method: http.MethodGet, path: "/plugins"}, &out)
	return out.Plugins, err
}

// Pipeline is the running pipeline: its stages with their counters, as the
// API renders them.
type Pipeline struct {
	Generation  int64             `json:"generation"`
	Queued      int64             `json:"queued"`
	ActiveChats int64             `json:"activeChats"`
	Stages      []json.RawMessage `json:"stages"`
}

// Pipeline returns the running pipeline.
func (c *Client) Pipeline(ctx context.Context) (*Pipeline, error) {
	var p Pipeline
	if err := c.do(ctx, request{method: http.MethodGet, path: "/pipeline"}, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// Instance is a live daemon sharing the store.
type Instance struct {
	ID          string    `json:"id"`
	URL         string    `json:"url"`
	Version     string    `json:"version"`
	StartedAt   time.Time `json:"startedAt"`
	HeartbeatAt time.Time `json:"heartbeatAt"`
	// Accounts are the accounts whose session it runs.
	Accounts []string `json:"accounts"`
	// Self is true for the daemon that answered.
	Self bool `json:"self"`
}

// Instances lists the live daemons (one on the embedded engine) with the
// accounts each runs.
func (c *Client) Instances(ctx context.Context) ([]Instance, error) {
	var out struct {
		Instances []Instance `json:"instances"`
	}
	err := c.do(ctx, request{method: http.MethodGet, path: "/instances"}, &out)
	return out.Instances, err
}
