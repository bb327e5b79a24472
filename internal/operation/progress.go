package operation

import (
	"fmt"
	"sync"
	"time"
)

// targetProgress says, as each target of an apply finishes, how far the
// apply is (done/total), how long it has run and which target was slowest:
// one line per target, which is what a CI log wants and what a person
// watching a fleet of hosts needs to see that it moves.
type targetProgress struct {
	mu          sync.Mutex
	total, n    int
	start       time.Time
	now         func() time.Time
	slowest     string
	slowestTook time.Duration
}

func newTargetProgress(total int, now func() time.Time) *targetProgress {
	return &targetProgress{total: total, start: now(), now: now}
}

// done records that target finished (it began at began) and returns the
// progress line.
func (p *targetProgress) done(target string, began time.Time) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	took := now.Sub(began)
	p.n++
	if took >= p.slowestTook {
		p.slowest, p.slowestTook = target, took
	}
	line := fmt.Sprintf("[%d/%d targets, %s] %s done in %s", p.n, p.total, round(now.Sub(p.start)), target, round(took))
	if p.total > 1 {
		line += fmt.Sprintf("; slowest so far %s (%s)", p.slowest, round(p.slowestTook))
	}
	return line
}

func round(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(100 * time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(time.Millisecond)
	}
	return d
}
