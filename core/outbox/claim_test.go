package outbox

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestEnqueueIsIdempotent(t *testing.T) {
	backends(t, func(t *testing.T, s backend) {
		ctx := context.Background()
		o := s.open(t, Options{Clock: newClock()})
		ev := testEvent(1)
		mustEnqueue(t, o, ev, "a", "b")
		mustEnqueue(t, o, ev, "a", "b", "a") // again, and a repeated target
		page, err := o.List(ctx, Filter{}, "", 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Jobs) != 2 {
			t.Fatalf("got %d jobs, want 2", len(page.Jobs))
		}
		j := mustGet(t, o, JobID(ev.ID, "a"))
		if j.State != StatePending || j.EventID != ev.ID || j.Target != "a" || j.AccountID != "acct" || j.Attempts != 0 {
			t.Fatalf("job = %+v", j)
		}
		if j.Event == nil || j.Event.Message.Text != "hello 1" || len(j.Event.Tags) != 1 {
			t.Fatalf("payload did not round-trip: %+v", j.Event)
		}
		// Only one claim per job: the duplicate enqueue did not schedule twice.
		for _, target := range []string{"a", "b"} {
			if _, err := o.Claim(ctx, target, "w"); err != nil {
				t.Fatal(err)
			}
			if _, err := o.Claim(ctx, target, "w"); !errors.Is(err, ErrNoJob) {
				t.Fatalf("second claim of %s: %v, want ErrNoJob", target, err)
			}
		}
	})
}

func TestClaimLeaseComplete(t *testing.T) {
	backends(t, func(t *testing.T, s backend) {
		ctx := context.Background()
		clk := newClock()
		o := s.open(t, Options{Clock: clk, Lease: time.Minute})
		mustEnqueue(t, o, testEvent(1), "a")

		if _, err := o.Claim(ctx, "other", "w1"); !errors.Is(err, ErrNoJob) {
			t.Fatalf("claim of another target: %v, want ErrNoJob", err)
		}
		j, err := o.Claim(ctx, "a", "w1")
		if err != nil {
			t.Fatal(err)
		}
		if j.State != StateProcessing || j.Owner != "w1" || j.ClaimID == "" || j.Attempts != 1 ||
			j.LeaseUntil == nil || !j.LeaseUntil.Equal(clk.Now().Add(time.Minute)) || j.FirstAttemptAt == nil {
			t.Fatalf("claimed job = %+v", j)
		}
		if _, err := o.Claim(ctx, "a", "w2"); !errors.Is(err, ErrNoJob) {
			t.Fatalf("claim under a live lease: %v, want ErrNoJob", err)
		}
		clk.Add(40 * time.Second)
		if err := o.Heartbeat(ctx, j); err != nil {
			t.Fatal(err)
		}
		clk.Add(40 * time.Second) // past the first lease, within the extended one
		if _, err := o.Claim(ctx, "a", "w2"); !errors.Is(err, ErrNoJob) {
			t.Fatalf("claim under a heartbeat-extended lease: %v, want ErrNoJob", err)
		}
		res := OK()
		res.Status, res.Response = 200, "accepted"
		if err := o.Complete(ctx, j, res, 15*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		got := mustGet(t, o, j.ID)
		if got.State != StateDone || got.LeaseUntil != nil || len(got.Log) != 1 {
			t.Fatalf("completed job = %+v", got)
		}
		if a := got.Log[0]; a.Result != OutcomeOK || a.Status != 200 || a.Response != "accepted" || a.DurationMS != 15 || a.Owner != "w1" {
			t.Fatalf("attempt = %+v", a)
		}
		if _, err := o.Claim(ctx, "a", "w2"); !errors.Is(err, ErrNoJob) {
			t.Fatalf("claim of a done job: %v, want ErrNoJob", err)
		}
	})
}

// A worker whose lease expired and was taken over can neither heartbeat nor
// complete: the new owner's outcome stands.
func TestLostLeaseCannotComplete(t *testing.T) {
	backends(t, func(t *testing.T, s backend) {
		ctx := context.Background()
		clk := newClock()
		o := s.open(t, Options{Clock: clk, Lease: time.Minute})
		mustEnqueue(t, o, testEvent(1), "a")
		a, err := o.Claim(ctx, "a", "A")
		if err != nil {
			t.Fatal(err)
		}
		clk.Add(time.Minute) // leaseUntil ≤ now: expired
		b, err := o.Claim(ctx, "a", "B")
		if err != nil {
			t.Fatalf("re-claim after lease expiry: %v", err)
		}
		if b.ID != a.ID || b.ClaimID == a.ClaimID || b.Attempts != 2 || b.Owner != "B" {
			t.Fatalf("re-claimed job = %+v", b)
		}
		if err := o.Heartbeat(ctx, a); !errors.Is(err, ErrLeaseLost) {
			t.Fatalf("stale heartbeat: %v, want ErrLeaseLost", err)
		}
		if err := o.Complete(ctx, a, Fail(errors.New("stale")), time.Millisecond); !errors.Is(err, ErrLeaseLost) {
			t.Fatalf("stale complete: %v, want ErrLeaseLost", err)
		}
		if got := mustGet(t, o, a.ID); got.State != StateProcessing || got.Owner != "B" {
			t.Fatalf("stale worker changed the job: %+v", got)
		}
		if err := o.Complete(ctx, b, OK(), time.Millisecond); err != nil {
			t.Fatal(err)
		}
		if got := mustGet(t, o, a.ID); got.State != StateDone || len(got.Log) != 1 || got.Log[0].Owner != "B" {
			t.Fatalf("job after the new owner completed = %+v", got)
		}
	})
}

// fixedRand returns r for every draw.
func fixedRand(r float64) func() float64 { return func() float64 { return r } }

func TestRetrySchedule(t *testing.T) {
	small := Schedule{Delays: []time.Duration{time.Second, 2 * time.Second}, Every: 5 * time.Second, MaxAge: 20 * time.Second, Jitter: 1, MinRetryAfter: time.Second, MaxRetryAfter: time.Minute}
	tests := []struct {
		name  string
		sched Schedule
		rand  func() float64
		// want is the offset of each attempt from the first; the job is
		// dead-lettered after the last one.
		want []time.Duration
	}{
		{"no jitter draw hits the schedule points", small, fixedRand(0),
			[]time.Duration{0, 1 * time.Second, 3 * time.Second, 8 * time.Second, 13 * time.Second, 18 * time.Second}},
		{"half jitter halves every wait", small, fixedRand(0.5),
			[]time.Duration{0, 500 * time.Millisecond, 1500 * time.Millisecond, 4 * time.Second, 6500 * time.Millisecond,
				9 * time.Second, 11500 * time.Millisecond, 14 * time.Second, 16500 * time.Millisecond, 19 * time.Second}},
		{"default schedule", DefaultSchedule(), fixedRand(0), defaultAttempts()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			backends(t, func(t *testing.T, s backend) {
				ctx := context.Background()
				clk := newClock()
				o := s.open(t, Options{Clock: clk, Schedule: &tt.sched, Rand: tt.rand, LogSize: 100})
				mustEnqueue(t, o, testEvent(1), "a")
				start := clk.Now()
				var got []time.Duration
				for {
					j, err := o.Claim(ctx, "a", "w")
					if err != nil {
						t.Fatalf("attempt %d: %v", len(got)+1, err)
					}
					got = append(got, clk.Now().Sub(start))
					if err := o.Complete(ctx, j, Retry(errors.New("503")), 0); err != nil {
						t.Fatal(err)
					}
					if j.State == StateDeadLetter {
						break
					}
					clk.Set(j.RunAt.Add(-time.Millisecond))
					if _, err := o.Claim(ctx, "a", "w"); !errors.Is(err, ErrNoJob) {
						t.Fatalf("claimed before runAt: %v", err)
					}
					clk.Set(j.RunAt)
				}
				if fmt.Sprint(got) != fmt.Sprint(tt.want) {
					t.Fatalf("attempts at %v\nwant        %v", got, tt.want)
				}
			})
		})
	}
}

// defaultAttempts: immediately, 5 s, 30 s, 2 min, 10 min, 30 min, 1 h, then
// every 3 h while within 72 h of the first attempt.
func defaultAttempts() []time.Duration {
	at := time.Duration(0)
	out := []time.Duration{0}
	for _, d := range []time.Duration{5 * time.Second, 30 * time.Second, 2 * time.Minute, 10 * time.Minute, 30 * time.Minute, time.Hour} {
		at += d
		out = append(out, at)
	}
	for at+3*time.Hour <= 72*time.Hour {
		at += 3 * time.Hour
		out = append(out, at)
	}
	return out
}

// With the default (full) jitter every wait falls in [0, schedule point].
func TestRetryJitterBounds(t *testing.T) {
	backends(t, func(t *testing.T, s backend) {
		ctx := context.Background()
		clk := newClock()
		sched := DefaultSchedule()
		o := s.open(t, Options{Clock: clk})
		mustEnqueue(t, o, testEvent(1), "a")
		for attempt := 1; ; attempt++ {
			j, err := o.Claim(ctx, "a", "w")
			if err != nil {
				t.Fatal(err)
			}
			now := clk.Now()
			if err := o.Complete(ctx, j, Retry(errors.New("down")), 0); err != nil {
				t.Fatal(err)
			}
			if j.State == StateDeadLetter {
				// Only a wait that would cross MaxAge kills the job, and the
				// longest possible wait is the schedule point.
				if deadline := j.FirstAttemptAt.Add(sched.MaxAge); !now.Add(sched.Nominal(attempt)).After(deadline) {
					t.Fatalf("dead-lettered at attempt %d although %s + %s is within %s", attempt, now, sched.Nominal(attempt), deadline)
				}
				return
			}
			wait := j.RunAt.Sub(now)
			if nominal := sched.Nominal(attempt); wait < 0 || wait > nominal {
				t.Fatalf("attempt %d: wait %s outside [0, %s]", attempt, wait, nominal)
			}
			clk.Set(j.RunAt)
		}
	})
}

func TestRetryAfterIsHonouredAndClamped(t *testing.T) {
	tests := []struct {
		name       string
		retryAfter time.Duration
		want       time.Duration
	}{
		{"honoured", 90 * time.Second, 90 * time.Second},
		{"raised to the minimum", time.Millisecond, time.Second},
		{"capped at the maximum", 100 * time.Hour, 6 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			backends(t, func(t *testing.T, s backend) {
				ctx := context.Background()
				clk := newClock()
				o := s.open(t, Options{Clock: clk, Rand: fixedRand(0)})
				mustEnqueue(t, o, testEvent(1), "a")
				j, err := o.Claim(ctx, "a", "w")
				if err != nil {
					t.Fatal(err)
				}
				if err := o.Complete(ctx, j, RetryAfter(tt.retryAfter, errors.New("429")), 0); err != nil {
					t.Fatal(err)
				}
				if got := mustGet(t, o, j.ID); got.State != StatePending || got.RunAt.Sub(clk.Now()) != tt.want {
					t.Fatalf("state %s, wait %s, want pending after %s", got.State, got.RunAt.Sub(clk.Now()), tt.want)
				}
			})
		})
	}
}

func TestFailDeadLettersAtOnce(t *testing.T) {
	backends(t, func(t *testing.T, s backend) {
		ctx := context.Background()
		o := s.open(t, Options{Clock: newClock()})
		mustEnqueue(t, o, testEvent(1), "a")
		j, err := o.Claim(ctx, "a", "w")
		if err != nil {
			t.Fatal(err)
		}
		res := Fail(errors.New("410 gone"))
		res.Status = 410
		if err := o.Complete(ctx, j, res, 0); err != nil {
			t.Fatal(err)
		}
		got := mustGet(t, o, j.ID)
		if got.State != StateDeadLetter || got.LastError != "410 gone" || got.Log[0].Status != 410 || got.Log[0].Result != OutcomeFail {
			t.Fatalf("job = %+v", got)
		}
		if _, err := o.Claim(ctx, "a", "w"); !errors.Is(err, ErrNoJob) {
			t.Fatalf("dead letter claimed: %v", err)
		}
	})
}

func TestAttemptLogIsBounded(t *testing.T) {
	backends(t, func(t *testing.T, s backend) {
		ctx := context.Background()
		clk := newClock()
		o := s.open(t, Options{Clock: clk, LogSize: 3, ResponseLimit: 8})
		mustEnqueue(t, o, testEvent(1), "a")
		for i := range 5 {
			j, err := o.Claim(ctx, "a", "w")
			if err != nil {
				t.Fatal(err)
			}
			res := Retry(fmt.Errorf("err %d", i))
			res.Response = "a long response body"
			if err := o.Complete(ctx, j, res, 0); err != nil {
				t.Fatal(err)
			}
			clk.Set(j.RunAt)
		}
		got := mustGet(t, o, JobID(testEvent(1).ID, "a"))
		if len(got.Log) != 3 || got.Log[0].Error != "err 2" || got.Log[2].Error != "err 4" {
			t.Fatalf("log = %+v", got.Log)
		}
		if got.Log[2].Response != "a long r…" {
			t.Fatalf("response not truncated: %q", got.Log[2].Response)
		}
	})
}
