package api

import (
	"net/http"

	"github.com/wildcathub/wildcat/core/rules"
)

// Rules lists the JavaScript rules the running pipeline's rules stages
// run; the daemon implements it over its rule engines.
type Rules interface {
	// RuleStatus lists the rules stage by stage, in pipeline order, each
	// with its Stage set.
	RuleStatus() []rules.RuleStatus
}

type ruleRoutes struct {
	rules Rules
}

// ruleList is the answer of GET /v1/rules; rules is [] rather than null
// when no stage runs any.
type ruleList struct {
	Rules []rules.RuleStatus `json:"rules"`
}

// list answers GET /v1/rules: every rule with its running version, the
// error that keeps a newer file from loading, and its counters.
func (h *ruleRoutes) list(w http.ResponseWriter, r *http.Request) error {
	if err := onlyParams(r.URL.Query()); err != nil {
		return err
	}
	rs := h.rules.RuleStatus()
	if rs == nil {
		rs = []rules.RuleStatus{}
	}
	return WriteJSON(w, http.StatusOK, ruleList{Rules: rs})
}
