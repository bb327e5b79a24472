package config

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	// Embedded zone database: windows name IANA zones, and a machine
	// without /usr/share/zoneinfo (a scratch container) must still plan.
	_ "time/tzdata"
)

var dayNames = [7]string{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"}

// ParseWindow parses "DAYS HH:MM-HH:MM ZONE", for example
// "Mon-Fri 07:00-19:00 Europe/Berlin", "Sat,Sun 00:00-24:00 UTC",
// "Fri-Mon 22:00-06:00 America/New_York" or "daily 01:00-05:00 UTC".
// DAYS is "daily" or a comma-separated list of days (Mon) and day ranges
// (Mon-Fri; Fri-Mon wraps over the weekend); they name the day on which the
// window opens. An end before the start crosses midnight; 24:00 is the end
// of the day. The range is left zero; the loader sets it.
func ParseWindow(spec string) (Window, error) {
	w := Window{Spec: spec}
	fields := strings.Fields(spec)
	if len(fields) != 3 {
		return w, fmt.Errorf("window %q: write it as DAYS HH:MM-HH:MM ZONE, for example \"Mon-Fri 07:00-19:00 Europe/Berlin\"", spec)
	}
	days, err := parseDays(fields[0])
	if err != nil {
		return w, fmt.Errorf("window %q: %w", spec, err)
	}
	w.Days = days
	from, to, ok := strings.Cut(fields[1], "-")
	if !ok {
		return w, fmt.Errorf("window %q: times must be HH:MM-HH:MM, like 07:00-19:00", spec)
	}
	if w.Start, err = parseClock(from, false); err != nil {
		return w, fmt.Errorf("window %q: start: %w", spec, err)
	}
	if w.End, err = parseClock(to, true); err != nil {
		return w, fmt.Errorf("window %q: end: %w", spec, err)
	}
	if w.Start == w.End {
		return w, fmt.Errorf("window %q: start and end are equal; for a whole day write 00:00-24:00", spec)
	}
	if fields[2] == "Local" || strings.EqualFold(fields[2], "local") {
		return w, fmt.Errorf("window %q: name an IANA time zone such as Europe/Berlin or UTC, not the machine's local zone", spec)
	}
	loc, err := time.LoadLocation(fields[2])
	if err != nil {
		return w, fmt.Errorf("window %q: unknown time zone %q; use an IANA name such as Europe/Berlin or UTC", spec, fields[2])
	}
	w.Loc = loc
	return w, nil
}

func parseDays(s string) ([7]bool, error) {
	var days [7]bool
	if strings.EqualFold(s, "daily") {
		for i := range days {
			days[i] = true
		}
		return days, nil
	}
	for _, part := range strings.Split(s, ",") {
		from, to, isRange := strings.Cut(part, "-")
		a, err := parseDay(from)
		if err != nil {
			return days, err
		}
		if !isRange {
			days[a] = true
			continue
		}
		b, err := parseDay(to)
		if err != nil {
			return days, err
		}
		for d := a; ; d = (d + 1) % 7 {
			days[d] = true
			if d == b {
				break
			}
		}
	}
	return days, nil
}

func parseDay(s string) (time.Weekday, error) {
	for i, n := range dayNames {
		if strings.EqualFold(s, n) || strings.EqualFold(s, time.Weekday(i).String()) {
			return time.Weekday(i), nil
		}
	}
	if s == "" {
		return 0, fmt.Errorf("empty day; days are Mon, Tue, Wed, Thu, Fri, Sat, Sun, ranges like Mon-Fri, or daily")
	}
	return 0, fmt.Errorf("unknown day %q%s; days are Mon, Tue, Wed, Thu, Fri, Sat, Sun, ranges like Mon-Fri, or daily", s, suggest(s, dayNames[:]))
}

// parseClock parses HH:MM into minutes after midnight; 24:00 only as an end.
func parseClock(s string, isEnd bool) (int, error) {
	hh, mm, ok := strings.Cut(s, ":")
	if !ok || len(hh) != 2 || len(mm) != 2 {
		return 0, fmt.Errorf("%q is not HH:MM", s)
	}
	h, err1 := strconv.Atoi(hh)
	m, err2 := strconv.Atoi(mm)
	if err1 != nil || err2 != nil || h < 0 || m < 0 || m > 59 || h > 24 {
		return 0, fmt.Errorf("%q is not a time of day (00:00 to 23:59)", s)
	}
	if h == 24 && m != 0 {
		return 0, fmt.Errorf("%q is not a time of day (00:00 to 24:00)", s)
	}
	if h == 24 && !isEnd {
		return 0, fmt.Errorf("%q: 24:00 is allowed only as an end", s)
	}
	return h*60 + m, nil
}

// String returns the window as written.
func (w Window) String() string { return w.Spec }

// interval is one occurrence of a window: [open, close).
type interval struct{ open, close time.Time }

// reach is the first instant at which the wall clock in loc reaches minute
// min of the given date. On a spring-forward day a skipped time is reached at
// the transition (the clock jumps past it); on a fall-back day a repeated
// time is reached at its first occurrence.
func reach(y int, mo time.Month, d, min int, loc *time.Location) time.Time {
	if min >= 24*60 { // 24:00 is midnight of the next day
		d++
		min -= 24 * 60
	}
	t := time.Date(y, mo, d, min/60, min%60, 0, 0, loc)
	start, _ := t.ZoneBounds()
	if start.IsZero() || !start.Before(t) {
		return t
	}
	want := time.Date(y, mo, d, min/60, min%60, 0, 0, time.UTC) // the date normalised, in wall-clock terms
	if h, m, _ := t.Clock(); h*60+m != min || t.Day() != want.Day() {
		// Skipped by a forward jump: Go moved it past the gap. The clock
		// first showed a later time at the transition.
		return start
	}
	_, off := t.Zone()
	_, prevOff := start.Add(-time.Nanosecond).Zone()
	if prevOff > off { // the clock went back at start: min may have occurred before
		earlier := t.Add(-time.Duration(prevOff-off) * time.Second)
		if earlier.Before(start) {
			return earlier
		}
	}
	return t
}

// occurrences returns the window's intervals that open on local dates from
// the date of from minus two days up to that date plus days.
func (w Window) occurrences(from time.Time, days int, out []interval) []interval {
	if w.Loc == nil {
		return out
	}
	l := from.In(w.Loc)
	y, mo, d := l.Date()
	for k := -2; k <= days; k++ {
		date := time.Date(y, mo, d+k, 12, 0, 0, 0, time.UTC) // noon: only its weekday and date matter
		if !w.Days[date.Weekday()] {
			continue
		}
		dy, dmo, dd := date.Date()
		open := reach(dy, dmo, dd, w.Start, w.Loc)
		end := w.End
		if w.End <= w.Start {
			end += 24 * 60 // crosses midnight: closes on the next day
		}
		close := reach(dy, dmo, dd, end, w.Loc)
		if close.After(open) {
			out = append(out, interval{open, close})
		}
	}
	return out
}

// Contains reports whether the window is open at t.
func (w Window) Contains(t time.Time) bool {
	var buf [10]interval
	for _, iv := range w.occurrences(t, 1, buf[:0]) {
		if !t.Before(iv.open) && t.Before(iv.close) {
			return true
		}
	}
	return false
}

// NextBoundary returns the first instant strictly after `after` at which the
// window opens or closes, or the zero time when it never changes (a window
// open all week).
func (w Window) NextBoundary(after time.Time) time.Time {
	return NextWindowBoundary([]Window{w}, after)
}

// WindowsContain reports whether any of the windows is open at t. Empty
// windows contain nothing; a policy without windows is open at any time
// (see Policy.Open).
func WindowsContain(ws []Window, t time.Time) bool {
	for _, w := range ws {
		if w.Contains(t) {
			return true
		}
	}
	return false
}

// boundaryHorizon bounds the search for the next boundary: a weekly pattern
// changes within a week plus a day; beyond that it never changes.
const boundaryHorizon = 8 * 24 * time.Hour

// NextWindowBoundary returns the first instant strictly after `after` at
// which the union of the windows opens or closes (one window closing while
// another stays open is no boundary), or the zero time when it never does.
func NextWindowBoundary(ws []Window, after time.Time) time.Time {
	// Most windows change daily: look three days ahead first, the whole
	// horizon only when that finds nothing.
	if b, ok := nextBoundaryWithin(ws, after, 3); ok {
		return b
	}
	b, ok := nextBoundaryWithin(ws, after, 17)
	if !ok || b.After(after.Add(boundaryHorizon)) {
		return time.Time{}
	}
	return b
}

// nextBoundaryWithin looks at occurrences opening up to `days` local dates
// after `after`. ok is false when no boundary lies where the generated
// occurrences are complete (a merged run may end only because generation
// stopped).
func nextBoundaryWithin(ws []Window, after time.Time, days int) (time.Time, bool) {
	var buf [64]interval
	ivs := buf[:0]
	for _, w := range ws {
		ivs = w.occurrences(after, days, ivs)
	}
	if len(ivs) == 0 {
		return time.Time{}, false
	}
	slices.SortFunc(ivs, func(a, b interval) int { return a.open.Compare(b.open) })
	merged := ivs[:1]
	for _, iv := range ivs[1:] {
		last := &merged[len(merged)-1]
		if !iv.open.After(last.close) {
			if iv.close.After(last.close) {
				last.close = iv.close
			}
			continue
		}
		merged = append(merged, iv)
	}
	// Occurrences opening on the last generated date start no earlier than
	// this (allowing for zone offsets and a DST hour); a boundary before it
	// cannot be an artefact of stopping there.
	safe := after.Add(time.Duration(days-1)*24*time.Hour - 2*time.Hour)
	for _, iv := range merged {
		for _, b := range []time.Time{iv.open, iv.close} {
			if b.After(after) {
				return b, b.Before(safe)
			}
		}
	}
	return time.Time{}, false
}

// windowsCover reports whether the windows are open during all of
// [start, end): the merged occurrence holding start must reach end.
func windowsCover(ws []Window, start, end time.Time) bool {
	days := int(end.Sub(start)/(24*time.Hour)) + 2
	if days > 400 {
		return windowsCoverSlow(ws, start, end)
	}
	var buf [32]interval
	ivs := buf[:0]
	for _, w := range ws {
		ivs = w.occurrences(start, days, ivs)
	}
	slices.SortFunc(ivs, func(a, b interval) int { return a.open.Compare(b.open) })
	var cur interval // the merged run that holds start, once found
	found := false
	for _, iv := range ivs {
		switch {
		case found && !iv.open.After(cur.close):
			if iv.close.After(cur.close) {
				cur.close = iv.close
			}
		case found:
			return !cur.close.Before(end)
		case !start.Before(iv.open) && start.Before(iv.close):
			cur, found = iv, true
		}
	}
	return found && !cur.close.Before(end)
}

// windowsCoverSlow walks boundary by boundary, for spans of more than a year.
func windowsCoverSlow(ws []Window, start, end time.Time) bool {
	t := start
	for range 10000 { // a bound against pathological spans: decades of boundaries
		if !WindowsContain(ws, t) {
			return false
		}
		b := NextWindowBoundary(ws, t)
		if b.IsZero() || !b.Before(end) {
			return true
		}
		t = b
	}
	return false
}
