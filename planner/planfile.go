package planner

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// WritePlanFile saves the plan as JSON (the same format as RenderJSON). The
// file is written beside its final name and renamed into place, so a reader
// never sees half a plan.
func WritePlanFile(path string, p *Plan) error {
	var buf bytes.Buffer
	if err := RenderJSON(&buf, p); err != nil {
		return fmt.Errorf("write plan file %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write plan file %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := tmp.Write(buf.Bytes()); err != nil {
		tmp.Close()
		return fmt.Errorf("write plan file %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write plan file %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write plan file %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write plan file %s: %w", path, err)
	}
	return nil
}

// readableFormatVersions are the plan file versions this binary reads and
// can check the integrity of. Any other, even a newer minor version, is
// refused.
var readableFormatVersions = []string{FormatVersion}

// ReadPlanFile loads a plan saved by WritePlanFile. It refuses a file that
// is not a jitform plan, one in a format_version this binary does not know
// (an unknown minor version too), and one whose content was edited after it
// was written (its ID no longer matches its content), whatever its version.
func ReadPlanFile(path string) (*Plan, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read plan file: %w", err)
	}
	return parsePlan(path, b)
}

func parsePlan(path string, b []byte) (*Plan, error) {
	var probe struct {
		FormatVersion *string `json:"format_version"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return nil, fmt.Errorf("read plan file %s: not a jitform plan: %s", path, jsonErrorAt(b, err))
	}
	if probe.FormatVersion == nil {
		return nil, fmt.Errorf("read plan file %s: not a jitform plan: no format_version", path)
	}
	if !slices.Contains(readableFormatVersions, *probe.FormatVersion) {
		// An unknown version, even a minor one, is refused: this binary
		// cannot know what such a file's id covers, so it cannot check
		// that the plan was not edited.
		return nil, fmt.Errorf("read plan file %s: format_version %q is not supported by this jitform (it reads %s); the file was written by another jitform version, or edited. Run jitform plan again with this version",
			path, *probe.FormatVersion, strings.Join(readableFormatVersions, ", "))
	}
	var p Plan
	dec := json.NewDecoder(bytes.NewReader(b))
	// A known version: every field is known, so an unknown one is a typo or an edit.
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("read plan file %s: not a jitform plan: %s", path, jsonErrorAt(b, err))
	}
	if err := validatePlan(&p); err != nil {
		return nil, fmt.Errorf("read plan file %s: %w", path, err)
	}
	// Integrity for every version read: the id is the digest of the content.
	id, err := planID(&p)
	if err != nil {
		return nil, fmt.Errorf("read plan file %s: %w", path, err)
	}
	if id != p.ID {
		return nil, fmt.Errorf("read plan file %s: the plan was modified after it was written (its id does not match its content); run jitform plan again", path)
	}
	return &p, nil
}

func validatePlan(p *Plan) error {
	var problems []string
	if p.ID == "" {
		problems = append(problems, "id is missing")
	}
	if p.At.IsZero() {
		problems = append(problems, "at is missing")
	}
	if p.ValidUntil.IsZero() {
		problems = append(problems, "valid_until is missing")
	}
	for i, c := range p.Changes {
		switch c.Kind {
		case KindAccount:
			if c.Action != ActionEnable && c.Action != ActionDisable {
				problems = append(problems, fmt.Sprintf("changes[%d].action is %q, want enable or disable for an account", i, c.Action))
			}
			if c.Group == "" {
				problems = append(problems, fmt.Sprintf("changes[%d] has no account address", i))
			}
		case "", KindGroup, KindRight, KindSudoRole:
			if c.Action != "add" && c.Action != "remove" {
				problems = append(problems, fmt.Sprintf("changes[%d].action is %q, want add or remove", i, c.Action))
			}
			if c.Group == "" || c.Member == "" {
				problems = append(problems, fmt.Sprintf("changes[%d] has no group or member", i))
			}
		default:
			problems = append(problems, fmt.Sprintf("changes[%d].kind is %q, want group, right, sudo_role or account", i, c.Kind))
		}
		if c.Reason.Kind == "" {
			problems = append(problems, fmt.Sprintf("changes[%d].reason.kind is missing", i))
		}
	}
	if len(problems) > 0 {
		return errors.New("invalid plan: " + strings.Join(problems, "; "))
	}
	return nil
}

// jsonErrorAt adds the line and column to a JSON syntax or type error.
func jsonErrorAt(b []byte, err error) string {
	var off int64 = -1
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		off = se.Offset
	case errors.As(err, &te):
		off = te.Offset
	}
	if off < 0 || off > int64(len(b)) {
		return err.Error()
	}
	line := 1 + bytes.Count(b[:off], []byte("\n"))
	col := int(off) - bytes.LastIndexByte(b[:off], '\n')
	return fmt.Sprintf("line %d, column %d: %v", line, col, err)
}

// StaleError says why a saved plan may no longer be applied.
type StaleError struct {
	Reasons []string
}

func (e *StaleError) Error() string {
	return "the saved plan is stale: " + strings.Join(e.Reasons, "; ") + ". Run jitform plan again."
}

// CheckFresh refuses to apply a saved plan when the world it was computed
// from has moved: its valid_until passed, the config, the ledger or an
// observed membership changed, or a fresh plan would make other changes.
// fresh is a plan computed now from current inputs.
func CheckFresh(saved, fresh *Plan, now time.Time) error {
	var reasons []string
	if !now.Before(saved.ValidUntil) {
		reasons = append(reasons, fmt.Sprintf("it was valid until %s and it is now %s", stamp(saved.ValidUntil), stamp(now)))
	}
	if saved.ConfigDigest != fresh.ConfigDigest {
		reasons = append(reasons, fmt.Sprintf("the configuration changed (digest %s, now %s)", short(saved.ConfigDigest), short(fresh.ConfigDigest)))
	}
	if saved.LedgerHead != fresh.LedgerHead {
		reasons = append(reasons, fmt.Sprintf("the ledger changed (head %s, now %s)", short(saved.LedgerHead), short(fresh.LedgerHead)))
	}
	groups := map[string]bool{}
	for g := range saved.Observed {
		groups[g] = true
	}
	for g := range fresh.Observed {
		groups[g] = true
	}
	var moved []string
	for g := range groups {
		if saved.Observed[g] != fresh.Observed[g] {
			moved = append(moved, g)
		}
	}
	slices.Sort(moved)
	for _, g := range moved {
		switch {
		case saved.Observed[g] == "":
			reasons = append(reasons, fmt.Sprintf("%s was not read by the plan and is readable now", g))
		case fresh.Observed[g] == "":
			reasons = append(reasons, fmt.Sprintf("%s can no longer be read", g))
		default:
			reasons = append(reasons, fmt.Sprintf("the membership of %s changed", g))
		}
	}
	if d := changeSetDiff(saved.Changes, fresh.Changes); d != "" {
		reasons = append(reasons, d)
	}
	if len(reasons) > 0 {
		return &StaleError{Reasons: reasons}
	}
	return nil
}

func changeSetDiff(saved, fresh []Change) string {
	key := func(c Change) string { return c.Action + " " + c.Group + " " + c.Member }
	in := func(cs []Change) map[string]bool {
		m := make(map[string]bool, len(cs))
		for _, c := range cs {
			m[key(c)] = true
		}
		return m
	}
	s, f := in(saved), in(fresh)
	var gone, extra []string
	for k := range s {
		if !f[k] {
			gone = append(gone, k)
		}
	}
	for k := range f {
		if !s[k] {
			extra = append(extra, k)
		}
	}
	if len(gone)+len(extra) == 0 {
		return ""
	}
	slices.Sort(gone)
	slices.Sort(extra)
	var parts []string
	if len(gone) > 0 {
		parts = append(parts, "no longer needed: "+strings.Join(limit(gone, 5), ", "))
	}
	if len(extra) > 0 {
		parts = append(parts, "now also needed: "+strings.Join(limit(extra, 5), ", "))
	}
	return "the changes differ (" + strings.Join(parts, "; ") + ")"
}

func limit(xs []string, n int) []string {
	if len(xs) <= n {
		return xs
	}
	return append(slices.Clone(xs[:n]), fmt.Sprintf("and %d more", len(xs)-n))
}

func short(d string) string {
	if d == "" {
		return "(empty)"
	}
	if len(d) > 12 {
		return d[:12]
	}
	return d
}
