package pluginhost

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// TestDeliverBatchAnswersEachJob: a plugin speaking protocol version 2 gets
// a batch in one call (the test plugin's BatchSink notes the size it saw)
// and answers every job for itself: the failing ones do not fail the
// others, and the call counters count jobs.
func TestDeliverBatchAnswersEachJob(t *testing.T) {
	h := start(t, Config{})
	if v := h.p.ProtocolVersion(); v != 2 {
		t.Fatalf("negotiated protocol %d, want 2", v)
	}
	if st := h.p.Status(); st.Protocol != 2 {
		t.Fatalf("status protocol %d, want 2", st.Protocol)
	}
	targets := []string{"ok", "retry", "ok", "retry-after", "fail", "gone", "ok"}
	jobs := make([]BatchJob, len(targets))
	for i, target := range targets {
		jobs[i] = BatchJob{Event: msg(fmt.Sprint("b", i)), Target: target, Attempt: 2, TargetConfig: []byte(`{"n":1}`)}
	}
	res := h.p.DeliverBatch(context.Background(), jobs)
	if len(res) != len(jobs) {
		t.Fatalf("%d results for %d jobs", len(res), len(jobs))
	}
	var got []string
	for i, r := range res {
		s := "retry"
		switch {
		case r.OK:
			s = "ok"
		case r.Permanent && r.DisableTarget:
			s = "disable"
		case r.Permanent:
			s = "fail"
		case r.RetryAfter > 0:
			s = fmt.Sprint("retry ", r.RetryAfter)
		}
		if targets[i] == "ok" && r.Response != fmt.Sprintf("batch of %d", len(jobs)) {
			t.Errorf("job %d: response %q: not delivered in one call of %d", i, r.Response, len(jobs))
		}
		got = append(got, s)
	}
	if want := "[ok retry ok retry 42s fail disable ok]"; fmt.Sprint(got) != want {
		t.Fatalf("outcomes %v, want %s", got, want)
	}
	if !strings.Contains(res[1].Err.Error(), "attempt 2") {
		t.Errorf("retry reason %v does not carry the job's attempt", res[1].Err)
	}
	if c := h.p.Status().Calls.Deliver; c.Calls != 7 || c.Errors != 4 {
		t.Fatalf("deliver counters %+v, want 7 calls, 4 errors", c)
	}
}

// TestDeliverBatchSplitsAtMaxBatch: more jobs than MaxBatch go in calls of
// at most MaxBatch.
func TestDeliverBatchSplitsAtMaxBatch(t *testing.T) {
	h := start(t, Config{})
	jobs := make([]BatchJob, MaxBatch+3)
	for i := range jobs {
		jobs[i] = BatchJob{Event: msg(fmt.Sprint("s", i)), Target: "ok", Attempt: 1}
	}
	sizes := map[string]int{}
	for i, r := range h.p.DeliverBatch(context.Background(), jobs) {
		if !r.OK {
			t.Fatalf("job %d: %+v", i, r)
		}
		sizes[r.Response]++
	}
	want := map[string]int{fmt.Sprintf("batch of %d", MaxBatch): MaxBatch, "batch of 3": 3}
	if fmt.Sprint(sizes) != fmt.Sprint(want) {
		t.Fatalf("calls %v, want %v", sizes, want)
	}
}

// TestDeliverBatchToAVersion1Plugin: a plugin that offers only protocol
// version 1 (and has no DeliverBatch at all) still gets its jobs, one
// Deliver each.
func TestDeliverBatchToAVersion1Plugin(t *testing.T) {
	h := start(t, Config{Path: bin("v1plugin")})
	if v := h.p.ProtocolVersion(); v != 1 {
		t.Fatalf("negotiated protocol %d, want 1", v)
	}
	targets := []string{"ok", "down", "ok"}
	jobs := make([]BatchJob, len(targets))
	for i, target := range targets {
		jobs[i] = BatchJob{Event: msg(fmt.Sprint("v", i)), Target: target, Attempt: 1}
	}
	res := h.p.DeliverBatch(context.Background(), jobs)
	for i, r := range res {
		wantOK := targets[i] == "ok"
		if r.OK != wantOK || r.Permanent {
			t.Fatalf("job %d (%s): %+v", i, targets[i], r)
		}
		if wantOK && r.Response != "v1 Deliver "+jobs[i].Event.ID+":ok" {
			t.Errorf("job %d: response %q, want one Deliver call", i, r.Response)
		}
		if !wantOK && !strings.Contains(r.Err.Error(), `target "down" is down`) {
			t.Errorf("job %d: error %v", i, r.Err)
		}
	}
}
