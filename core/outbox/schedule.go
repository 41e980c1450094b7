package outbox

import (
	"fmt"
	"time"
)

// Schedule says when a failed delivery is tried again. The first attempt is
// immediate (at enqueue); after attempt n fails the job waits Delays[n-1],
// and Every once the list is used up, until no attempt would start within
// MaxAge of the first one — then the job is dead-lettered.
//
// Each wait is drawn uniformly from [(1-Jitter)·d, d]: the schedule point is
// a ceiling and Jitter = 1 is "full jitter", which spreads the retries of
// many jobs that failed together (an endpoint outage) instead of sending
// them back in one burst when it recovers.
type Schedule struct {
	Delays []time.Duration `koanf:"delays"`
	Every  time.Duration   `koanf:"every"`
	MaxAge time.Duration   `koanf:"max_age"`
	Jitter float64         `koanf:"jitter"`
	// A target's retryAfter (e.g. HTTP Retry-After) replaces the drawn wait,
	// clamped to [MinRetryAfter, MaxRetryAfter] so that "0" cannot hot-loop
	// and "next month" cannot park a job past its schedule unnoticed.
	MinRetryAfter time.Duration `koanf:"min_retry_after"`
	MaxRetryAfter time.Duration `koanf:"max_retry_after"`
}

// DefaultSchedule: immediately, then 5 s, 30 s, 2 min, 10 min, 30 min, 1 h,
// then every 3 h until 3 days after the first attempt; full jitter;
// retryAfter clamped to [1 s, 6 h].
func DefaultSchedule() Schedule {
	return Schedule{
		Delays: []time.Duration{
			5 * time.Second, 30 * time.Second, 2 * time.Minute,
			10 * time.Minute, 30 * time.Minute, time.Hour,
		},
		Every:         3 * time.Hour,
		MaxAge:        72 * time.Hour,
		Jitter:        1,
		MinRetryAfter: time.Second,
		MaxRetryAfter: 6 * time.Hour,
	}
}

// Validate reports a schedule that cannot work.
func (s Schedule) Validate() error {
	for i, d := range s.Delays {
		if d < 0 {
			return fmt.Errorf("retry schedule: delays[%d] is negative", i)
		}
	}
	switch {
	case s.Every <= 0:
		return fmt.Errorf("retry schedule: every must be greater than zero")
	case s.MaxAge <= 0:
		return fmt.Errorf("retry schedule: max_age must be greater than zero")
	case s.Jitter < 0 || s.Jitter > 1:
		return fmt.Errorf("retry schedule: jitter %v is not between 0 and 1", s.Jitter)
	case s.MinRetryAfter < 0 || s.MaxRetryAfter < s.MinRetryAfter:
		return fmt.Errorf("retry schedule: retry-after bounds [%s, %s] are not a range", s.MinRetryAfter, s.MaxRetryAfter)
	}
	return nil
}

// Nominal is the schedule point (the wait before jitter) after attempt n
// (1-based) failed.
func (s Schedule) Nominal(attempt int) time.Duration {
	if attempt >= 1 && attempt <= len(s.Delays) {
		return s.Delays[attempt-1]
	}
	return s.Every
}

// next returns when attempt+1 should run, or ok=false when the schedule is
// exhausted. r is a uniform draw in [0,1).
func (s Schedule) next(attempt int, first, now time.Time, retryAfter time.Duration, r float64) (time.Time, bool) {
	var wait time.Duration
	if retryAfter > 0 {
		wait = min(max(retryAfter, s.MinRetryAfter), s.MaxRetryAfter)
	} else {
		d := s.Nominal(attempt)
		wait = d - time.Duration(r*s.Jitter*float64(d))
	}
	at := now.Add(wait)
	if at.After(first.Add(s.MaxAge)) {
		return time.Time{}, false
	}
	return at, true
}
