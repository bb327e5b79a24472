package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ParseDuration parses a duration as written in the config: Go's units
// ("90m", "4h", "1h30m") plus days ("2d", "1d12h"), where a day is 24 hours.
// Negative durations are refused: nothing in a policy lasts less than nothing.
func ParseDuration(s string) (time.Duration, error) {
	orig := s
	if s == "" {
		return 0, fmt.Errorf("empty duration; write it like \"4h\", \"90m\" or \"2d\"")
	}
	if strings.HasPrefix(s, "-") || strings.HasPrefix(s, "+") {
		return 0, fmt.Errorf("duration %q: write it without a sign, like \"4h\"", orig)
	}
	var total time.Duration
	if i := strings.IndexByte(s, 'd'); i >= 0 {
		days, err := strconv.ParseUint(s[:i], 10, 16)
		if err != nil {
			return 0, fmt.Errorf("duration %q: days must be a whole number, like \"2d\" or \"1d12h\"", orig)
		}
		total = time.Duration(days) * 24 * time.Hour
		s = s[i+1:]
		if s == "" {
			return total, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || strings.HasPrefix(s, "-") || strings.HasPrefix(s, "+") {
		return 0, fmt.Errorf("duration %q: write it like \"4h\", \"90m\", \"1h30m\" or \"2d\" (units d, h, m, s)", orig)
	}
	return total + d, nil
}

// suggest returns ` (did you mean "x"?)` for the closest option, or "".
func suggest(given string, options []string) string {
	if s := nearest(given, options); s != "" {
		return fmt.Sprintf(" (did you mean %q?)", s)
	}
	return ""
}

// nearest returns the option within a small edit distance of given, or "".
func nearest(given string, options []string) string {
	best, bestD := "", 3
	given = strings.ToLower(given)
	for _, o := range options {
		// The length difference bounds the distance from below: most
		// options are skipped without computing it.
		if diff := utf8.RuneCountInString(o) - utf8.RuneCountInString(given); diff >= bestD || -diff >= bestD {
			continue
		}
		if d := editDistance(given, strings.ToLower(o)); d < bestD {
			best, bestD = o, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
