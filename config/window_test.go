package config

import (
	"strings"
	"testing"
	"time"
)

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func mustWindow(t *testing.T, spec string) Window {
	t.Helper()
	w, err := ParseWindow(spec)
	if err != nil {
		t.Fatalf("ParseWindow(%q): %v", spec, err)
	}
	return w
}

func TestParseWindow(t *testing.T) {
	t.Parallel()
	tests := []struct {
		spec       string
		days       string // the opening days, Sun first, as x and .
		start, end int
		err        string
	}{
		{spec: "Mon-Fri 07:00-19:00 Europe/Berlin", days: ".xxxxx.", start: 420, end: 1140},
		{spec: "Mon,Wed,Fri 08:30-12:00 UTC", days: ".x.x.x.", start: 510, end: 720},
		{spec: "Sat-Sun 00:00-24:00 UTC", days: "x.....x", start: 0, end: 1440},
		{spec: "Fri-Mon 22:00-06:00 America/New_York", days: "xx...xx", start: 1320, end: 360},
		{spec: "daily 01:00-05:00 Europe/Berlin", days: "xxxxxxx", start: 60, end: 300},
		{spec: "mon,Tuesday,SAT 10:00-11:00 UTC", days: ".xx...x", start: 600, end: 660},
		{spec: "Sun-Sat 00:00-24:00 UTC", days: "xxxxxxx", start: 0, end: 1440},
		{spec: "Mon-Fri 07:00-19:00", err: "write it as DAYS HH:MM-HH:MM ZONE"},
		{spec: "Mon-Fri 07:00-19:00 Europe/Berln", err: `unknown time zone "Europe/Berln"`},
		{spec: "Mon-Fri 07:00-19:00 Local", err: "not the machine's local zone"},
		{spec: "Mon-Fir 07:00-19:00 UTC", err: `unknown day "Fir" (did you mean "Fri"?)`},
		{spec: "Mon 24:00-02:00 UTC", err: "24:00 is allowed only as an end"},
		{spec: "Mon 10:00-10:00 UTC", err: "start and end are equal"},
		{spec: "Mon 10:00-24:01 UTC", err: "is not a time of day"},
		{spec: "Mon 10:60-11:00 UTC", err: "is not a time of day"},
		{spec: "Mon 07:59-23:59 UTC", days: ".x.....", start: 479, end: 1439},
		{spec: "Mon 25:00-26:00 UTC", err: "is not a time of day"},
		{spec: "Mon 9:00-11:00 UTC", err: "is not HH:MM"},
		{spec: "Mon 09:00 UTC", err: "times must be HH:MM-HH:MM"},
		{spec: "Mon, 09:00-10:00 UTC", err: "empty day"},
		{spec: "Mon,,Tue 09:00-10:00 UTC", err: "empty day"},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			t.Parallel()
			w, err := ParseWindow(tt.spec)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var days strings.Builder
			for _, on := range w.Days {
				days.WriteString(map[bool]string{true: "x", false: "."}[on])
			}
			if days.String() != tt.days || w.Start != tt.start || w.End != tt.end || w.Spec != tt.spec {
				t.Errorf("got days %s %d-%d spec %q, want %s %d-%d", days.String(), w.Start, w.End, w.Spec, tt.days, tt.start, tt.end)
			}
		})
	}
}

// Europe/Berlin in 2026: clocks spring forward on Sunday 29 March at 02:00
// CET (01:00Z) to 03:00 CEST, and fall back on Sunday 25 October at 03:00
// CEST (01:00Z) to 02:00 CET.
func TestWindowContains(t *testing.T) {
	t.Parallel()
	tests := []struct {
		spec string
		at   string
		want bool
	}{
		// Weekdays in winter (UTC+1) and summer (UTC+2).
		{"Mon-Fri 07:00-19:00 Europe/Berlin", "2026-11-23T05:59:59Z", false},
		{"Mon-Fri 07:00-19:00 Europe/Berlin", "2026-11-23T06:00:00Z", true},
		{"Mon-Fri 07:00-19:00 Europe/Berlin", "2026-11-23T17:59:59Z", true},
		{"Mon-Fri 07:00-19:00 Europe/Berlin", "2026-11-23T18:00:00Z", false},
		{"Mon-Fri 07:00-19:00 Europe/Berlin", "2026-06-01T05:00:00Z", true},
		{"Mon-Fri 07:00-19:00 Europe/Berlin", "2026-06-01T04:59:59Z", false},
		{"Mon-Fri 07:00-19:00 Europe/Berlin", "2026-11-22T10:00:00Z", false}, // Sunday
		// Spring forward: 01:00 CET to 05:00 CEST lasts three hours.
		{"daily 01:00-05:00 Europe/Berlin", "2026-03-28T23:59:59Z", false},
		{"daily 01:00-05:00 Europe/Berlin", "2026-03-29T00:00:00Z", true},
		{"daily 01:00-05:00 Europe/Berlin", "2026-03-29T02:59:59Z", true},
		{"daily 01:00-05:00 Europe/Berlin", "2026-03-29T03:00:00Z", false},
		// A start that does not exist (02:30 is skipped) opens when the clock jumps.
		{"Sun 02:30-04:00 Europe/Berlin", "2026-03-29T00:59:59Z", false},
		{"Sun 02:30-04:00 Europe/Berlin", "2026-03-29T01:00:00Z", true},
		{"Sun 02:30-04:00 Europe/Berlin", "2026-03-29T01:59:59Z", true},
		{"Sun 02:30-04:00 Europe/Berlin", "2026-03-29T02:00:00Z", false},
		// Fall back: 01:00 CEST to 05:00 CET lasts five hours.
		{"daily 01:00-05:00 Europe/Berlin", "2026-10-24T22:59:59Z", false},
		{"daily 01:00-05:00 Europe/Berlin", "2026-10-24T23:00:00Z", true},
		{"daily 01:00-05:00 Europe/Berlin", "2026-10-25T03:59:59Z", true},
		{"daily 01:00-05:00 Europe/Berlin", "2026-10-25T04:00:00Z", false},
		// A repeated time opens at its first occurrence and does not flicker.
		{"Sun 02:30-03:30 Europe/Berlin", "2026-10-25T00:29:59Z", false},
		{"Sun 02:30-03:30 Europe/Berlin", "2026-10-25T00:30:00Z", true},
		{"Sun 02:30-03:30 Europe/Berlin", "2026-10-25T01:15:00Z", true}, // 02:15 CET, the second time round
		{"Sun 02:30-03:30 Europe/Berlin", "2026-10-25T02:29:59Z", true},
		{"Sun 02:30-03:30 Europe/Berlin", "2026-10-25T02:30:00Z", false},
		// Crossing midnight on DST nights: 7 hours in spring, 9 in autumn.
		{"Sat 22:00-06:00 Europe/Berlin", "2026-03-28T20:59:59Z", false},
		{"Sat 22:00-06:00 Europe/Berlin", "2026-03-28T21:00:00Z", true},
		{"Sat 22:00-06:00 Europe/Berlin", "2026-03-29T03:59:59Z", true},
		{"Sat 22:00-06:00 Europe/Berlin", "2026-03-29T04:00:00Z", false},
		{"Sat 22:00-06:00 Europe/Berlin", "2026-10-24T20:00:00Z", true},
		{"Sat 22:00-06:00 Europe/Berlin", "2026-10-25T04:59:59Z", true},
		{"Sat 22:00-06:00 Europe/Berlin", "2026-10-25T05:00:00Z", false},
		{"Sat 22:00-06:00 Europe/Berlin", "2026-10-25T21:00:00Z", false}, // Sunday night: not an opening day
		// Day ranges that wrap, and the opening day of a midnight-crossing window.
		{"Fri-Mon 22:00-02:00 UTC", "2026-11-24T01:59:59Z", true},  // Tue early: Monday's window
		{"Fri-Mon 22:00-02:00 UTC", "2026-11-25T01:00:00Z", false}, // Wed early: Tuesday closed
		{"Fri-Mon 22:00-02:00 UTC", "2026-11-24T22:30:00Z", false}, // Tue evening
		{"Fri-Mon 22:00-02:00 UTC", "2026-11-27T22:30:00Z", true},  // Fri evening
		// 24:00 ends at midnight.
		{"Mon 20:00-24:00 UTC", "2026-11-23T23:59:59Z", true},
		{"Mon 20:00-24:00 UTC", "2026-11-24T00:00:00Z", false},
		{"daily 00:00-24:00 UTC", "2026-11-24T00:00:00Z", true},
		// Zones west of UTC: New York falls back on 1 November 2026.
		{"Sun 00:00-03:00 America/New_York", "2026-11-01T04:00:00Z", true},  // 00:00 EDT
		{"Sun 00:00-03:00 America/New_York", "2026-11-01T07:59:59Z", true},  // 02:59 EST
		{"Sun 00:00-03:00 America/New_York", "2026-11-01T08:00:00Z", false}, // 03:00 EST
	}
	for _, tt := range tests {
		t.Run(tt.spec+"@"+tt.at, func(t *testing.T) {
			t.Parallel()
			w := mustWindow(t, tt.spec)
			if got := w.Contains(utc(tt.at)); got != tt.want {
				t.Errorf("Contains(%s) = %v, want %v", tt.at, got, tt.want)
			}
		})
	}
}

func TestWindowNextBoundary(t *testing.T) {
	t.Parallel()
	tests := []struct {
		spec  string
		after string
		want  string // "" for none
	}{
		{"Mon-Fri 07:00-19:00 Europe/Berlin", "2026-11-23T05:00:00Z", "2026-11-23T06:00:00Z"},
		{"Mon-Fri 07:00-19:00 Europe/Berlin", "2026-11-23T06:00:00Z", "2026-11-23T18:00:00Z"}, // strictly after
		{"Mon-Fri 07:00-19:00 Europe/Berlin", "2026-11-27T18:00:00Z", "2026-11-30T06:00:00Z"}, // Friday close: Monday
		{"Mon-Fri 07:00-19:00 Europe/Berlin", "2026-03-27T18:00:00Z", "2026-03-30T05:00:00Z"}, // over the spring change
		{"Mon-Fri 07:00-19:00 Europe/Berlin", "2026-10-23T17:00:00Z", "2026-10-26T06:00:00Z"}, // over the autumn change
		{"daily 01:00-05:00 Europe/Berlin", "2026-03-29T00:00:00Z", "2026-03-29T03:00:00Z"},
		{"daily 01:00-05:00 Europe/Berlin", "2026-10-24T23:00:00Z", "2026-10-25T04:00:00Z"},
		{"Sun 02:30-04:00 Europe/Berlin", "2026-03-28T12:00:00Z", "2026-03-29T01:00:00Z"},
		{"Sun 02:30-03:30 Europe/Berlin", "2026-10-25T00:30:00Z", "2026-10-25T02:30:00Z"},
		{"Sat 22:00-06:00 Europe/Berlin", "2026-03-28T21:00:00Z", "2026-03-29T04:00:00Z"},
		{"Sat 22:00-06:00 Europe/Berlin", "2026-10-24T20:00:00Z", "2026-10-25T05:00:00Z"},
		{"Sat,Sun 00:00-24:00 UTC", "2026-11-27T12:00:00Z", "2026-11-28T00:00:00Z"},
		{"Sat,Sun 00:00-24:00 UTC", "2026-11-28T10:00:00Z", "2026-11-30T00:00:00Z"}, // Sat and Sun are one stretch
		{"Fri-Mon 22:00-02:00 UTC", "2026-11-24T01:00:00Z", "2026-11-24T02:00:00Z"},
		{"Fri-Mon 22:00-02:00 UTC", "2026-11-24T02:00:00Z", "2026-11-27T22:00:00Z"},
		{"Mon 20:00-24:00 UTC", "2026-11-24T00:00:00Z", "2026-11-30T20:00:00Z"},
		{"daily 00:00-24:00 UTC", "2026-11-24T00:00:00Z", ""}, // never changes
		{"daily 22:00-24:00 Europe/Berlin", "2026-11-23T22:30:00Z", "2026-11-23T23:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.spec+"@"+tt.after, func(t *testing.T) {
			t.Parallel()
			w := mustWindow(t, tt.spec)
			got := w.NextBoundary(utc(tt.after))
			if tt.want == "" {
				if !got.IsZero() {
					t.Errorf("NextBoundary = %s, want none", got.UTC().Format(time.RFC3339))
				}
				return
			}
			if !got.Equal(utc(tt.want)) {
				t.Errorf("NextBoundary = %s, want %s", got.UTC().Format(time.RFC3339), tt.want)
			}
			// A boundary is where Contains changes.
			if w.Contains(got) == w.Contains(got.Add(-time.Nanosecond)) {
				t.Errorf("Contains does not change at the boundary %s", got.UTC())
			}
		})
	}
}

// Through all of 2026, in zones with whole-hour and half-hour DST shifts,
// NextBoundary and Contains agree every five minutes (every boundary here
// falls on a multiple of five minutes): Contains changes exactly at the
// boundaries and nowhere else.
func TestWindowBoundariesAgreeWithContains(t *testing.T) {
	t.Parallel()
	specs := []string{
		"Mon-Fri 07:00-19:00 Europe/Berlin",
		"Sat 22:00-06:00 Europe/Berlin",
		"Sun 02:30-03:30 Europe/Berlin",
		"daily 01:30-02:30 America/New_York",
		"Fri-Mon 23:00-01:00 Australia/Lord_Howe", // a half-hour DST shift
	}
	for _, spec := range specs {
		t.Run(spec, func(t *testing.T) {
			t.Parallel()
			w := mustWindow(t, spec)
			from := utc("2026-01-01T00:00:00Z")
			to := utc("2027-01-01T00:00:00Z")
			next := w.NextBoundary(from)
			prev := w.Contains(from)
			for m := from.Add(5 * time.Minute); m.Before(to); m = m.Add(5 * time.Minute) {
				cur := w.Contains(m)
				if cur != prev {
					if !m.Equal(next) {
						t.Fatalf("Contains changes at %s but NextBoundary said %s", m, next)
					}
					next = w.NextBoundary(m)
				} else if m.Equal(next) {
					t.Fatalf("NextBoundary %s, but Contains does not change there", m)
				}
				prev = cur
			}
		})
	}
}

func TestWindowsUnion(t *testing.T) {
	t.Parallel()
	ws := []Window{
		mustWindow(t, "Mon 08:00-12:00 UTC"),
		mustWindow(t, "Mon 11:00-14:00 UTC"),
		mustWindow(t, "Mon 14:00-15:00 Europe/London"), // winter: UTC, adjacent to the one before
	}
	tests := []struct{ after, want string }{
		{"2026-11-23T07:00:00Z", "2026-11-23T08:00:00Z"},
		{"2026-11-23T09:00:00Z", "2026-11-23T15:00:00Z"}, // 12:00 and 14:00 are no change of the union
		{"2026-11-23T15:00:00Z", "2026-11-30T08:00:00Z"},
	}
	for _, tt := range tests {
		if got := NextWindowBoundary(ws, utc(tt.after)); !got.Equal(utc(tt.want)) {
			t.Errorf("NextWindowBoundary(%s) = %s, want %s", tt.after, got.UTC().Format(time.RFC3339), tt.want)
		}
	}
	if !WindowsContain(ws, utc("2026-11-23T13:00:00Z")) || WindowsContain(ws, utc("2026-11-23T15:00:00Z")) {
		t.Error("WindowsContain disagrees with the windows")
	}
	if WindowsContain(nil, utc("2026-11-23T13:00:00Z")) || !NextWindowBoundary(nil, utc("2026-11-23T13:00:00Z")).IsZero() {
		t.Error("no windows: nothing contained, no boundary")
	}

	cover := []struct {
		start, end string
		want       bool
	}{
		{"2026-11-23T08:00:00Z", "2026-11-23T15:00:00Z", true}, // across three windows
		{"2026-11-23T07:59:00Z", "2026-11-23T09:00:00Z", false},
		{"2026-11-23T14:00:00Z", "2026-11-23T15:00:01Z", false},
		{"2026-11-23T14:00:00Z", "2026-11-23T15:00:00Z", true}, // the end is exclusive
	}
	for _, c := range cover {
		if got := windowsCover(ws, utc(c.start), utc(c.end)); got != c.want {
			t.Errorf("windowsCover(%s, %s) = %v, want %v", c.start, c.end, got, c.want)
		}
	}
}

func BenchmarkWindowContains(b *testing.B) {
	w, _ := ParseWindow("Mon-Fri 07:00-19:00 Europe/Berlin")
	at := utc("2026-11-23T12:00:00Z")
	for b.Loop() {
		w.Contains(at)
	}
}

func BenchmarkWindowNextBoundary(b *testing.B) {
	w, _ := ParseWindow("Mon-Fri 07:00-19:00 Europe/Berlin")
	at := utc("2026-11-23T12:00:00Z")
	for b.Loop() {
		w.NextBoundary(at)
	}
}

// windowsCover (one pass over the occurrences) agrees with the boundary walk
// for grants of many starts and lengths, over DST changes.
func TestWindowsCoverAgreesWithWalk(t *testing.T) {
	t.Parallel()
	sets := [][]Window{
		{mustWindow(t, "Mon-Fri 07:00-19:00 Europe/Berlin")},
		{mustWindow(t, "daily 22:00-06:00 Europe/Berlin"), mustWindow(t, "Sat-Sun 00:00-24:00 Europe/Berlin")},
		{mustWindow(t, "Sat 22:00-06:00 Europe/Berlin"), mustWindow(t, "Sun 05:00-09:00 UTC")},
	}
	for i, ws := range sets {
		n := 0
		for start := utc("2026-03-26T00:00:00Z"); start.Before(utc("2026-04-02T00:00:00Z")); start = start.Add(37 * time.Minute) {
			for _, d := range []time.Duration{time.Minute, time.Hour, 5 * time.Hour, 30 * time.Hour, 100 * time.Hour} {
				fast, slow := windowsCover(ws, start, start.Add(d)), windowsCoverSlow(ws, start, start.Add(d))
				if fast != slow {
					t.Fatalf("set %d, %s + %s: windowsCover = %v, boundary walk = %v", i, start, d, fast, slow)
				}
				if fast {
					n++
				}
			}
		}
		if n == 0 {
			t.Errorf("set %d: no span was covered; the comparison proves nothing", i)
		}
	}
}
