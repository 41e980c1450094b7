package outbox

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// ClaimBatch takes up to n due jobs, earliest first, under one claim; a
// batch completion settles each on its own, and one lost lease fails only
// its own job.
func TestClaimBatchAndCompleteBatch(t *testing.T) {
	backends(t, func(t *testing.T, s backend) {
		ctx := context.Background()
		clk := newClock()
		o := s.open(t, Options{Clock: clk, Lease: time.Minute, Rand: fixedRand(0)})
		for i := range 5 {
			mustEnqueue(t, o, testEvent(i), "a")
			clk.Add(time.Millisecond) // distinct runAt: a defined claim order
		}
		first, err := o.ClaimBatch(ctx, "a", "w1", 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(first) != 3 {
			t.Fatalf("claimed %d, want 3", len(first))
		}
		for i, j := range first {
			if j.EventID != testEvent(i).ID || j.State != StateProcessing || j.Owner != "w1" || j.Attempts != 1 ||
				j.ClaimID == "" || j.LeaseUntil == nil || j.Event == nil {
				t.Fatalf("job %d of the batch = %+v", i, j)
			}
		}
		rest, err := o.ClaimBatch(ctx, "a", "w2", 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(rest) != 2 || rest[0].EventID != testEvent(3).ID || rest[1].EventID != testEvent(4).ID {
			t.Fatalf("second batch = %v", ids(rest))
		}
		if _, err := o.ClaimBatch(ctx, "a", "w3", 3); !errors.Is(err, ErrNoJob) {
			t.Fatalf("third batch: %v, want ErrNoJob", err)
		}

		// w1's lease on first[2] ends and w3 takes it over.
		clk.Add(time.Minute)
		if err := o.Heartbeat(ctx, first[0]); err != nil {
			t.Fatal(err)
		}
		if err := o.Heartbeat(ctx, first[1]); err != nil {
			t.Fatal(err)
		}
		for _, j := range rest {
			if err := o.Heartbeat(ctx, j); err != nil {
				t.Fatal(err)
			}
		}
		taken, err := o.ClaimBatch(ctx, "a", "w3", 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(taken) != 1 || taken[0].ID != first[2].ID || taken[0].Attempts != 2 {
			t.Fatalf("take-over = %v", ids(taken))
		}

		errs := o.CompleteBatch(ctx, []Completion{
			{Job: first[0], Result: OK(), Took: time.Millisecond},
			{Job: first[1], Result: Retry(errors.New("503")), Took: time.Millisecond},
			{Job: first[2], Result: OK(), Took: time.Millisecond},
		})
		if errs[0] != nil || errs[1] != nil || !errors.Is(errs[2], ErrLeaseLost) {
			t.Fatalf("batch completion errors = %v", errs)
		}
		if got := mustGet(t, o, first[0].ID); got.State != StateDone || len(got.Log) != 1 {
			t.Fatalf("first job = %+v", got)
		}
		if got := mustGet(t, o, first[1].ID); got.State != StatePending || got.LastError != "503" || !got.RunAt.Equal(clk.Now().Add(5*time.Second)) {
			t.Fatalf("retried job = %+v", got)
		}
		if got := mustGet(t, o, first[2].ID); got.State != StateProcessing || got.Owner != "w3" || len(got.Log) != 0 {
			t.Fatalf("the stale completion changed the taken-over job: %+v", got)
		}
		if first[2].State != StateProcessing {
			t.Fatalf("the stale job was updated in memory: %+v", first[2])
		}
	})
}

func ids(jobs []*Job) []string {
	out := make([]string, len(jobs))
	for i, j := range jobs {
		out[i] = j.ID
	}
	return out
}

// Bury stores a dead letter once; it neither replaces a job already stored
// for the pair nor is claimed.
func TestBury(t *testing.T) {
	backends(t, func(t *testing.T, s backend) {
		ctx := context.Background()
		o := s.open(t, Options{Clock: newClock()})
		ev := testEvent(1)
		for range 2 {
			if err := o.Bury(ctx, ev, "pipeline:enrich", "stage failed"); err != nil {
				t.Fatal(err)
			}
		}
		j := mustGet(t, o, JobID(ev.ID, "pipeline:enrich"))
		if j.State != StateDeadLetter || j.LastError != "stage failed" || len(j.Log) != 1 || j.Log[0].Result != OutcomeFail || j.Event.ID != ev.ID {
			t.Fatalf("buried job = %+v", j)
		}
		if _, err := o.Claim(ctx, "pipeline:enrich", "w"); !errors.Is(err, ErrNoJob) {
			t.Fatalf("a dead letter was claimed: %v", err)
		}
		mustEnqueue(t, o, ev, "a")
		if err := o.Bury(ctx, ev, "a", "late"); err != nil {
			t.Fatal(err)
		}
		if j := mustGet(t, o, JobID(ev.ID, "a")); j.State != StatePending {
			t.Fatalf("bury replaced a queued job: %+v", j)
		}
		// Retried, the dead letter is delivered like any job.
		if _, err := o.Retry(ctx, JobID(ev.ID, "pipeline:enrich")); err != nil {
			t.Fatal(err)
		}
		if j, err := o.Claim(ctx, "pipeline:enrich", "w"); err != nil || j.Attempts != 1 {
			t.Fatalf("claim after retry: %+v, %v", j, err)
		}
	})
}

// Purge deletes every done job older than the cut, however many (SQLite
// deletes them in chunks), and nothing else.
func TestPurgeManyDoneJobs(t *testing.T) {
	defer func(n int) { purgeChunk = n }(purgeChunk)
	purgeChunk = 40
	backends(t, func(t *testing.T, s backend) {
		ctx := context.Background()
		clk := newClock()
		o := s.open(t, Options{Clock: clk})
		old := 2*purgeChunk + 15
		at := clk.Now()
		var jobs []*Job
		for i := range old + 20 {
			state := StateDone
			if i >= old {
				state = StateDeadLetter
			}
			ev := testEvent(i)
			jobs = append(jobs, &Job{ID: JobID(ev.ID, "a"), EventID: ev.ID, Target: "a", AccountID: ev.AccountID,
				State: state, RunAt: at, CreatedAt: at, UpdatedAt: at, Log: []Attempt{}, Event: ev})
		}
		if err := o.b.Insert(ctx, jobs); err != nil {
			t.Fatal(err)
		}
		recent := clk.Add(time.Hour)
		mustEnqueue(t, o, testEvent(100000), "a")
		j, err := o.Claim(ctx, "a", "w")
		if err != nil {
			t.Fatal(err)
		}
		if err := o.Complete(ctx, j, OK(), 0); err != nil {
			t.Fatal(err)
		}
		n, err := o.Purge(ctx, recent)
		if err != nil || n != int64(old) {
			t.Fatalf("purged %d, %v; want %d", n, err, old)
		}
		st, err := o.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Depth[StateDone]["a"] != 1 || st.Depth[StateDeadLetter]["a"] != 20 {
			t.Fatalf("depth after purge = %v", st.Depth)
		}
		if _, err := o.Get(ctx, fmt.Sprint(JobID(testEvent(0).ID, "a"))); !errors.Is(err, ErrNotFound) {
			t.Fatalf("purged job still there: %v", err)
		}
	})
}
