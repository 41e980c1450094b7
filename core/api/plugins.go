package api

import (
	"net/http"

	"github.com/wildcathub/wildcat/core/pluginhost"
)

// Plugins reports the daemon's plugins; the plugin host's Manager
// implements it.
type Plugins interface {
	// Status snapshots every declared plugin, in name order.
	Status() []pluginhost.Status
}

type pluginRoutes struct {
	plugins Plugins
}

// pluginList is the answer of GET /v1/plugins.
type pluginList struct {
	Plugins []pluginhost.Status `json:"plugins"`
}

// list answers GET /v1/plugins: every plugin declared in config.yaml with
// what it reported (version, capabilities), its state, restarts, last error
// and call counters. plugins is [] when none is declared.
func (h *pluginRoutes) list(w http.ResponseWriter, r *http.Request) error {
	if err := onlyParams(r.URL.Query()); err != nil {
		return err
	}
	st := h.plugins.Status()
	if st == nil {
		st = []pluginhost.Status{}
	}
	return WriteJSON(w, http.StatusOK, pluginList{Plugins: st})
}
