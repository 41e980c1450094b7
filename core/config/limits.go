package config

import (
	"fmt"
	"maps"
	"slices"
	"time"
)

// RateLimits are the REST API's token buckets (per client address, and per
// API key once keys exist), by route class. A per_minute of 0 turns that
// class's limit off.
type RateLimits struct {
	Enabled             bool `koanf:"enabled" doc:"Limit REST requests with token buckets per client address and per API key; over a limit the answer is 429 with Retry-After and RateLimit-Limit/-Remaining/-Reset headers (successful answers carry the RateLimit headers too)."`
	ExemptLoopback      bool `koanf:"exempt_loopback" doc:"Let clients on loopback (127.0.0.0/8, ::1) through unlimited: the operator's own scripts. Behind a reverse proxy on the same host every client is loopback — turn this off there (or resolve client addresses through the proxy's header)."`
	ReadsPerMinute      int  `koanf:"reads_per_minute" doc:"GET and HEAD requests per minute one client address (and one API key) may make once its burst is used up; 0 turns the limit off."`
	ReadsBurst          int  `koanf:"reads_burst" doc:"GET and HEAD requests one client address (and one API key) may make at once."`
	SendsPerMinute      int  `koanf:"sends_per_minute" doc:"Sends per minute (POST /v1/accounts/{id}/messages, …/sim/inbound, POST /v1/media) per client address and per API key once the burst is used up; 0 turns the limit off. Send pacing (send.pacing) is separate: it paces each account, whoever sends."`
	SendsBurst          int  `koanf:"sends_burst" doc:"Sends one client address (and one API key) may make at once."`
	ManagementPerMinute int  `koanf:"management_per_minute" doc:"Other changing requests (accounts, webhooks, pipeline, deliveries) per minute per client address and per API key once the burst is used up; 0 turns the limit off."`
	ManagementBurst     int  `koanf:"management_burst" doc:"Changing requests one client address (and one API key) may make at once."`
	FailedAuthPerMinute int  `koanf:"failed_auth_per_minute" doc:"Failed authentications per minute a client address is allowed after its burst; when its bucket is empty every request from it (even with a right key) is answered 429 until it refills. 0 turns the limit off."`
	FailedAuthBurst     int  `koanf:"failed_auth_burst" doc:"Failed authentications a client address may have at once before it is blocked."`
}

// Pacing paces the sends of each account by the driver of the account.
type Pacing struct {
	WhatsApp DriverPacing             `koanf:"whatsapp"`
	Sim      DriverPacing             `koanf:"sim"`
	Accounts map[string]AccountPacing `koanf:"accounts" doc:"Pacing of named accounts instead of their driver's: a map of ACCOUNT ID to {interval, jitter, daily_cap, warmup}; a field left out keeps the driver's value. E.g. a number with years of history may send more than a new one."`
}

// AccountPacing overrides the fields it sets of an account's driver's
// pacing; nil fields keep the driver's.
type AccountPacing struct {
	Interval *time.Duration `koanf:"interval"`
	Jitter   *time.Duration `koanf:"jitter"`
	DailyCap *int           `koanf:"daily_cap"`
	WarmUp   *[]int         `koanf:"warmup"`
}

// Over returns base with o's fields in place of base's.
func (o AccountPacing) Over(base DriverPacing) DriverPacing {
	if o.Interval != nil {
		base.Interval = *o.Interval
	}
	if o.Jitter != nil {
		base.Jitter = *o.Jitter
	}
	if o.DailyCap != nil {
		base.DailyCap = *o.DailyCap
	}
	if o.WarmUp != nil {
		base.WarmUp = *o.WarmUp
	}
	return base
}

// DriverPacing is the send pacing of every account of one driver.
type DriverPacing struct {
	Interval time.Duration `koanf:"interval" doc:"Least time between two sends of one account of this driver (REST, rule and plugin sends alike); later sends wait their turn in the queue. 0 with jitter 0: no pace."`
	Jitter   time.Duration `koanf:"jitter" doc:"Most random time added to each gap between two sends (uniform from 0), so an account never sends at a machine's regular rhythm."`
	DailyCap int           `koanf:"daily_cap" doc:"Most sends of one account per UTC day; past it sends are refused (REST: 429 with Retry-After until midnight UTC; rules and plugins: the action fails). 0: no cap."`
	WarmUp   []int         `koanf:"warmup" doc:"Caps of the first days of a new account, counted in 24-hour days from its creation: [day 1, day 2, …]; the smaller of this and daily_cap applies. Empty: no warm-up. Default: whatsapp [100, 250, 500], sim none."`
}

func defaultRateLimits() RateLimits {
	return RateLimits{
		Enabled:             true,
		ExemptLoopback:      true,
		ReadsPerMinute:      600,
		ReadsBurst:          120,
		SendsPerMinute:      120,
		SendsBurst:          30,
		ManagementPerMinute: 60,
		ManagementBurst:     20,
		FailedAuthPerMinute: 1,
		FailedAuthBurst:     5,
	}
}

func defaultPacing() Pacing {
	return Pacing{
		// A person's rhythm: 2 to 5 s between messages, a thousand a day,
		// and a number new to Wildcat starts low for three days.
		WhatsApp: DriverPacing{Interval: 2 * time.Second, Jitter: 3 * time.Second, DailyCap: 1000, WarmUp: []int{100, 250, 500}},
		// Simulated accounts are for tests, demos and benchmarks: unpaced.
		Sim: DriverPacing{},
	}
}

func (c *Config) validateLimits() error {
	rl := c.HTTP.RateLimits
	for _, b := range []struct {
		name       string
		per, burst int
	}{
		{"reads", rl.ReadsPerMinute, rl.ReadsBurst},
		{"sends", rl.SendsPerMinute, rl.SendsBurst},
		{"management", rl.ManagementPerMinute, rl.ManagementBurst},
		{"failed_auth", rl.FailedAuthPerMinute, rl.FailedAuthBurst},
	} {
		if b.per < 0 {
			return &Error{Key: "http.rate_limits." + b.name + "_per_minute", Problem: "must not be negative"}
		}
		if b.per > 0 && b.burst < 1 {
			return &Error{Key: "http.rate_limits." + b.name + "_burst", Problem: fmt.Sprintf("must be at least 1 while %s_per_minute is %d", b.name, b.per)}
		}
	}
	pacings := map[string]DriverPacing{"whatsapp": c.Send.Pacing.WhatsApp, "sim": c.Send.Pacing.Sim}
	for id, o := range c.Send.Pacing.Accounts {
		if err := CheckAccountID(id); err != nil {
			return &Error{Key: "send.pacing.accounts." + id, Problem: err.Error()}
		}
		// Checked over a zero base: only what the override sets.
		pacings["accounts."+id] = o.Over(DriverPacing{})
	}
	for _, name := range slices.Sorted(maps.Keys(pacings)) {
		p := pacings[name]
		key := "send.pacing." + name + "."
		switch {
		case p.Interval < 0:
			return &Error{Key: key + "interval", Problem: "must not be negative"}
		case p.Jitter < 0:
			return &Error{Key: key + "jitter", Problem: "must not be negative"}
		case p.DailyCap < 0:
			return &Error{Key: key + "daily_cap", Problem: "must not be negative"}
		}
		for i, n := range p.WarmUp {
			if n < 1 {
				return &Error{Key: fmt.Sprintf("%swarmup[%d]", key, i), Problem: fmt.Sprintf("must be at least 1, not %d", n)}
			}
		}
	}
	return nil
}
