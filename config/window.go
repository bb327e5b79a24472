package config

import (
	"time"

	"github.com/hashicorp/hcl/v2"
)

// Window is a recurring weekly time window in an IANA time zone, written
// "Mon-Fri 07:00-19:00 Europe/Berlin". All comparisons happen in the zone, so
// daylight-saving transitions move the window's UTC instants, not its clock
// times. A window whose end is before its start crosses midnight.
type Window struct {
	Spec  string  // as written
	Days  [7]bool // indexed by time.Weekday: the day the window opens
	Start int     // minutes after local midnight
	End   int     // minutes after local midnight; 1440 for 24:00
	Loc   *time.Location
	Range hcl.Range
}

// ParseWindow, Contains and NextBoundary are implemented in window_impl.go.
