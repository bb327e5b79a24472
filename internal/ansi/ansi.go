// Package ansi is jitform's one place for terminal colour: the codes and a
// painter that is a no-op when colour is off (no terminal, --no-color,
// NO_COLOR; the caller decides).
package ansi

// SGR codes jitform uses; they may be concatenated (Red + Bold).
const (
	Reset  = "\x1b[0m"
	Red    = "\x1b[31m"
	Green  = "\x1b[32m"
	Yellow = "\x1b[33m"
	Bold   = "\x1b[1m"
)

// Painter wraps text in a colour code when on; off, it returns text as is.
type Painter bool

// Paint returns s in code, reset after it, or s unchanged when p is off.
func (p Painter) Paint(code, s string) string {
	if !p || s == "" {
		return s
	}
	return code + s + Reset
}
