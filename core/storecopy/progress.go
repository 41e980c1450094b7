package storecopy

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// Bars draws one progress bar per kind on a terminal, with its count, rate
// and time left: a million messages take a while.
type Bars struct {
	p    *mpb.Progress
	mu   sync.Mutex
	bars map[string]*mpb.Bar
	last map[string]time.Time
}

// NewBars draws on w, which should be a terminal.
func NewBars(w io.Writer) *Bars {
	return &Bars{
		p:    mpb.New(mpb.WithOutput(w), mpb.WithWidth(40), mpb.WithRefreshRate(150*time.Millisecond)),
		bars: map[string]*mpb.Bar{},
		last: map[string]time.Time{},
	}
}

func (b *Bars) Start(kind string, total int64) {
	bar := b.p.AddBar(total,
		mpb.PrependDecorators(
			decor.Name(kind, decor.WC{C: decor.DindentRight | decor.DextraSpace, W: 14}),
			decor.CountersNoUnit("%d / %d", decor.WCSyncWidth),
		),
		mpb.AppendDecorators(
			decor.EwmaSpeed(nil, " %.0f/s", 30, decor.WCSyncSpace),
			decor.OnComplete(decor.EwmaETA(decor.ET_STYLE_MMSS, 30, decor.WCSyncSpace), " done"),
		),
	)
	b.mu.Lock()
	b.bars[kind], b.last[kind] = bar, time.Now()
	b.mu.Unlock()
}

func (b *Bars) Add(kind string, n int) {
	b.mu.Lock()
	bar, last := b.bars[kind], b.last[kind]
	now := time.Now()
	b.last[kind] = now
	b.mu.Unlock()
	bar.EwmaIncrBy(n, now.Sub(last))
}

func (b *Bars) Done(kind string, copied int64, _ time.Duration) {
	b.mu.Lock()
	bar := b.bars[kind]
	b.mu.Unlock()
	// The source may have changed since it was counted: end the bar at
	// what was actually copied.
	bar.SetTotal(copied, true)
}

func (b *Bars) Wait() { b.p.Wait() }

// Lines reports progress as plain lines, for logs and pipes: one when a kind
// starts, one every interval while it runs, one when it ends.
type Lines struct {
	w        io.Writer
	interval time.Duration
	mu       sync.Mutex
	total    map[string]int64
	done     map[string]int64
	start    map[string]time.Time
	said     map[string]time.Time
}

// NewLines writes to w at most once per interval per kind.
func NewLines(w io.Writer, interval time.Duration) *Lines {
	return &Lines{w: w, interval: interval, total: map[string]int64{}, done: map[string]int64{},
		start: map[string]time.Time{}, said: map[string]time.Time{}}
}

func (l *Lines) Start(kind string, total int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	l.total[kind], l.start[kind], l.said[kind] = total, now, now
	fmt.Fprintf(l.w, "%s: copying %d\n", kind, total)
}

func (l *Lines) Add(kind string, n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.done[kind] += int64(n)
	now := time.Now()
	if now.Sub(l.said[kind]) < l.interval {
		return
	}
	l.said[kind] = now
	rate := float64(l.done[kind]) / now.Sub(l.start[kind]).Seconds()
	left := "?"
	if rate > 0 && l.total[kind] > l.done[kind] {
		left = time.Duration(float64(l.total[kind]-l.done[kind]) / rate * float64(time.Second)).Round(time.Second).String()
	}
	fmt.Fprintf(l.w, "%s: %d / %d, %.0f/s, %s left\n", kind, l.done[kind], l.total[kind], rate, left)
}

func (l *Lines) Done(kind string, copied int64, took time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, "%s: %d copied in %s\n", kind, copied, took.Round(time.Millisecond))
}

func (l *Lines) Wait() {}
