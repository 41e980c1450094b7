package rules

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"
	"weak"
)

// ErrMemoryLimit is in the chain of a RuleError for a handler cut because
// the daemon's heap passed the rules' memory limit while it ran.
var ErrMemoryLimit = errors.New("rule handler cut: the daemon's heap passed the rules' memory limit")

// DefaultMemoryLimit is Options.MemoryLimit when it is 0.
const DefaultMemoryLimit = 512 << 20

// memWatchInterval is how often the heap is sampled while rule calls run.
// Reading one runtime/metrics sample costs well under a microsecond and
// does not stop the world.
const memWatchInterval = 5 * time.Millisecond

// Go has no per-goroutine memory accounting, so a rule's memory cannot be
// measured on its own. What can be measured cheaply is the whole heap: the
// watchdog samples it while any rule call runs and, when it passes a
// limit, collects garbage once to see whether it really is live. If it
// still is, every rule call running under that limit is interrupted (as
// a deadline would) and its runtime discarded, and every idle runtime in
// the pools is discarded too: a runtime's globals are the only place a
// rule keeps memory between calls, so dropping the runtimes frees all a
// rule can hold. The guarantee is about the daemon's heap, not one rule:
// it stays within the limit plus what one bytecode instruction or one
// checked built-in call (limits.go) allocates past it, and a rule call
// that happens to run while the heap is over the limit is cut even if
// another rule (or the daemon itself) grew it.
type memWatch struct {
	mu      sync.Mutex
	running map[*vm]int64 // armed runtimes and their limits
	active  bool          // the sampling goroutine runs
	// relieveMu makes concurrent relieve calls wait for one collection
	// instead of each forcing their own.
	relieveMu sync.Mutex
}

var watchdog = &memWatch{running: map[*vm]int64{}}

// memEpoch counts memory cuts. A runtime created before the latest one is
// discarded instead of reused: it may hold what pushed the heap over.
var memEpoch atomic.Uint64

// memoryCut is the value a runtime is interrupted with by the watchdog.
type memoryCut struct {
	heap, limit int64
}

func (c *memoryCut) Error() string {
	return fmt.Sprintf("%v (heap %d MiB, limit %d MiB)", ErrMemoryLimit, c.heap>>20, c.limit>>20)
}

func (c *memoryCut) Unwrap() error { return ErrMemoryLimit }

func (w *memWatch) add(m *vm, limit int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.running[m] = limit
	if !w.active {
		w.active = true
		go w.loop()
	}
}

func (w *memWatch) remove(m *vm) {
	w.mu.Lock()
	delete(w.running, m)
	w.mu.Unlock()
}

// loop samples the heap until no rule call runs.
func (w *memWatch) loop() {
	t := time.NewTicker(memWatchInterval)
	defer t.Stop()
	for range t.C {
		w.mu.Lock()
		if len(w.running) == 0 {
			w.active = false
			w.mu.Unlock()
			return
		}
		lowest := int64(-1)
		engines := map[*Engine]bool{}
		for m, l := range w.running {
			if lowest < 0 || l < lowest {
				lowest = l
			}
			engines[m.v.eng] = true
		}
		w.mu.Unlock()
		if heapBytes() <= lowest {
			continue
		}
		w.relieve(lowest, engines)
	}
}

// logCut tells the log of each engine that had a call running.
func logCut(engines map[*Engine]bool, heap, limit int64) {
	for e := range engines {
		e.log.Warn("rules' memory limit reached: runtimes discarded", slog.Int64("limit_bytes", limit), slog.Int64("heap_bytes", heap))
	}
}

// relieve is called with the heap over limit: it collects garbage once to
// see what is live (this only happens under memory pressure, where a
// collection is due anyway) and, if the live heap is still over, cuts the
// calls running under a limit it passes and discards every idle runtime.
// It reports whether it cut.
func (w *memWatch) relieve(limit int64, engines map[*Engine]bool) bool {
	w.relieveMu.Lock()
	defer w.relieveMu.Unlock()
	runtime.GC()
	heap := heapBytes()
	if heap <= limit {
		return false
	}
	memEpoch.Add(1)
	w.mu.Lock()
	for m, l := range w.running {
		if heap > l {
			m.cutMemory(&memoryCut{heap: heap, limit: l})
		}
	}
	w.mu.Unlock()
	drainAll()
	logCut(engines, heap, limit)
	return true
}

// beforeCall runs before an event's rules take their runtimes: calls
// shorter than the sampling interval are never seen running, so the heap
// a rule keeps between them (in its globals) is checked here — once per
// event, not per rule: a reading costs a few percent of a short rule call.
func (w *memWatch) beforeCall(e *Engine) {
	if l := e.opts.MemoryLimit; l > 0 && heapBytes() > l {
		w.relieve(l, map[*Engine]bool{e: true})
	}
}

// versions are the rule versions whose pools drainAll empties, held weakly
// so that a replaced version is still collected.
var versions struct {
	mu   sync.Mutex
	list []weak.Pointer[version]
}

func registerVersion(v *version) {
	versions.mu.Lock()
	defer versions.mu.Unlock()
	// Forget collected versions as the list grows (reloads add versions).
	if n := len(versions.list); n >= 64 && n&(n-1) == 0 {
		live := versions.list[:0]
		for _, p := range versions.list {
			if p.Value() != nil {
				live = append(live, p)
			}
		}
		clear(versions.list[len(live):])
		versions.list = live
	}
	versions.list = append(versions.list, weak.Make(v))
}

// drainAll discards the idle runtimes of every version and forgets the
// versions that were collected.
func drainAll() {
	versions.mu.Lock()
	live := versions.list[:0]
	var vs []*version
	for _, p := range versions.list {
		if v := p.Value(); v != nil {
			live = append(live, p)
			vs = append(vs, v)
		}
	}
	clear(versions.list[len(live):])
	versions.list = live
	versions.mu.Unlock()
	for _, v := range vs {
		v.drain()
	}
}

var heapSample = []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
var heapSampleMu sync.Mutex

// heapBytes is the memory held by heap objects, live or not yet swept.
func heapBytes() int64 {
	heapSampleMu.Lock()
	defer heapSampleMu.Unlock()
	metrics.Read(heapSample)
	if heapSample[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return int64(heapSample[0].Value.Uint64())
}

// cutMemory interrupts the runtime's call in progress, if any: the same
// path as a deadline, with a different reason.
func (m *vm) cutMemory(c *memoryCut) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.running {
		m.rt.Interrupt(c)
	}
}

// drain discards the version's idle runtimes.
func (v *version) drain() {
	for {
		select {
		case m := <-v.pool:
			m.close()
		default:
			return
		}
	}
}
