package operation

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	ldapdn "github.com/jitform/jitform/internal/dn"
	"github.com/jitform/jitform/providers"
)

// Adoption is what `jitform import` found for one group: the members it has
// now, written as principals where they resolve back to the same member.
type Adoption struct {
	Group  string `json:"group"`
	Target string `json:"target"`
	// Declared: the members the config declares today, as written.
	Declared []string `json:"declared"`
	// Members: the members observed now, as principals where the name
	// round-trips through the target's own lookup, else their canonical ID
	// (a DN, a SID): the list that keeps exactly today's members.
	Members []string `json:"members"`
	// Undeclared: observed members the config does not declare; an exclusive
	// group's first apply removes them unless they are adopted.
	Undeclared []string `json:"undeclared"`
	// Granted: observed members jitform added for a grant (per the ledger).
	// They are not in Members: adopting them would make a JIT grant standing.
	Granted []string `json:"granted"`
	// Unresolved: observed members that name no entry the target can find
	// (a dangling DN, an orphaned SID). They cannot be declared; an
	// exclusive group loses them at the next apply.
	Unresolved []string `json:"unresolved"`
	Exclusive  bool     `json:"exclusive"`
	Error      string   `json:"error,omitempty"`
}

// Adopt reads the current members of the selected groups (opts.Targets)
// and says how to declare them. It changes nothing and takes no lock.
func Adopt(ctx context.Context, opts Options) ([]Adoption, error) {
	s, err := Prepare(ctx, opts)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	var out []Adoption
	for _, g := range s.Input.Config.Groups {
		obs, ok := s.Input.Observed[g.Addr]
		if !ok {
			continue
		}
		a := Adoption{Group: g.Addr, Target: g.Target.Addr, Declared: append([]string{}, g.Members...), Exclusive: g.Exclusive,
			Members: []string{}, Undeclared: []string{}, Granted: []string{}, Unresolved: []string{}}
		if obs.Err != nil {
			a.Error = obs.Err.Error()
			out = append(out, a)
			continue
		}
		declared := map[string]bool{}
		for _, m := range g.Members {
			if r, ok := s.Input.Resolved[g.Target.Addr][m]; ok && r.Err == nil {
				declared[r.Member.ID] = true
			}
		}
		names := s.principalNames(ctx, g.Target.Addr, obs.Members)
		managed := map[string]bool{}
		if s.Input.Ledger != nil {
			for id := range s.Input.Ledger.Managed[g.Addr] {
				managed[id] = true
			}
		}
		for _, m := range obs.Members {
			name, ok := names[m.ID]
			if !ok {
				a.Unresolved = append(a.Unresolved, m.ID)
				continue
			}
			if managed[m.ID] && !declared[m.ID] {
				a.Granted = append(a.Granted, name)
				continue
			}
			a.Members = append(a.Members, name)
			if !declared[m.ID] {
				a.Undeclared = append(a.Undeclared, name)
			}
		}
		sort.Strings(a.Members)
		sort.Strings(a.Undeclared)
		sort.Strings(a.Granted)
		sort.Strings(a.Unresolved)
		out = append(out, a)
	}
	return out, nil
}

// principalNames maps each member that resolves on its target to the
// shortest name that resolves back to it (a DN's first RDN value such as a
// uid, a Windows DOMAIN\user), else to its canonical ID. A member whose ID
// does not resolve either is absent from the map.
func (s *Session) principalNames(ctx context.Context, target string, members []providers.Member) map[string]string {
	names := map[string]string{}
	candidates := map[string][]string{} // member ID -> names to try, best first
	var ask []string
	for _, m := range members {
		for _, c := range append(candidateNames(m), m.ID) {
			candidates[m.ID] = append(candidates[m.ID], c)
			if !slices.Contains(ask, c) {
				ask = append(ask, c)
			}
		}
	}
	t := s.targets[target]
	if t == nil || len(ask) == 0 {
		return names
	}
	res, err := t.Resolve(ctx, ask)
	if err != nil {
		return names
	}
	for id, cs := range candidates {
		for _, c := range cs {
			if r, ok := res[c]; ok && r.Err == nil && r.Member.ID == id {
				names[id] = c
				break
			}
		}
	}
	return names
}

// candidateNames are the names a person would write for m, best first.
func candidateNames(m providers.Member) []string {
	var out []string
	if m.Name != "" && m.Name != m.ID && !strings.Contains(m.Name, "=") {
		out = append(out, m.Name) // DOMAIN\user, a uid
	}
	for _, s := range []string{m.Name, m.ID} {
		if !strings.Contains(s, "=") {
			continue
		}
		if v, ok := ldapdn.FirstValue(s); ok && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// String is a one-line summary of an adoption.
func (a Adoption) String() string {
	return fmt.Sprintf("%s: %d member(s), %d undeclared", a.Group, len(a.Members), len(a.Undeclared))
}
