package pipeline

import "time"

// Stage calls run on goroutines of their own, so a caller can give up on a
// handler that does not return. A fresh goroutine starts with a small stack
// that a rules handler (goja) grows by copying it several times, on every
// call: a handful of that CPU per event. Runners are goroutines kept for
// the next call instead, with their stacks grown; one idle for
// runnerIdle ends.
type runnerPool struct {
	// calls hands a call to an idle runner; unbuffered, so a send
	// succeeds only when a runner is waiting.
	calls chan func()
}

const runnerIdle = 30 * time.Second

// stageRunners runs every engine's stage calls.
var stageRunners = &runnerPool{calls: make(chan func())}

// run runs f on an idle runner, or on a new one when none is idle. It does
// not wait for f.
func (p *runnerPool) run(f func()) {
	select {
	case p.calls <- f:
	default:
		go p.runner(f)
	}
}

func (p *runnerPool) runner(f func()) {
	idle := time.NewTimer(runnerIdle)
	defer idle.Stop()
	for {
		f()
		f = nil // not kept alive while idle
		idle.Reset(runnerIdle)
		select {
		case f = <-p.calls:
		case <-idle.C:
			return
		}
	}
}
