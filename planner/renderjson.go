package planner

import (
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// RenderJSON writes the plan as the documented JSON (docs/plan-json.md):
// indented, UTC times, empty lists as [] rather than null, so consumers need
// no special cases.
func RenderJSON(w io.Writer, p *Plan) error {
	b, err := json.MarshalIndent(normalised(p), "", "  ")
	if err != nil {
		return fmt.Errorf("render plan as JSON: %w", err)
	}
	b = append(b, '\n')
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("write plan JSON: %w", err)
	}
	return nil
}

// normalised returns a copy of p in canonical form: UTC times and non-nil
// lists and maps.
func normalised(p *Plan) *Plan {
	q := *p
	q.CreatedAt, q.At, q.ValidUntil = q.CreatedAt.UTC(), q.At.UTC(), q.ValidUntil.UTC()
	q.NextChangeAt = utcPtr(q.NextChangeAt)
	if q.Observed == nil {
		q.Observed = map[string]string{}
	}
	if q.Groups == nil {
		q.Groups = []GroupSummary{}
	}
	q.Changes = make([]Change, len(p.Changes))
	for i, c := range p.Changes {
		c.Reason.WindowStart = utcPtr(c.Reason.WindowStart)
		c.Reason.WindowEnd = utcPtr(c.Reason.WindowEnd)
		q.Changes[i] = c
	}
	return &q
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
