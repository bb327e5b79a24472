package planner

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"slices"
	"time"

	"github.com/jitform/jitform/providers"
)

// ObservedDigest is a hex SHA-256 over a group's observed member IDs, sorted
// and deduplicated, so that the order a provider returns them in does not
// matter. An unreadable group has no digest ("").
func ObservedDigest(o providers.Observation) string {
	if o.Err != nil {
		return ""
	}
	ids := make([]string, len(o.Members))
	for i, m := range o.Members {
		ids[i] = m.ID
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	h := sha256.New()
	for _, id := range ids {
		h.Write([]byte(id))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// planID hashes everything in the plan but its ID and CreatedAt (which the
// CLI may set): two plans with the same ID plan the same thing from the same
// observations. ReadPlanFile recomputes it to detect an edited plan file.
// Fields are written length-prefixed straight into the hash: a JSON
// encoding of a 100,000-change plan would cost more than planning it.
func planID(p *Plan) (string, error) {
	h := idHasher{h: sha256.New(), buf: make([]byte, 0, 40<<10)}
	h = h.str(p.FormatVersion)
	h = h.time(p.At)
	h = h.time(p.ValidUntil)
	if p.NextChangeAt != nil {
		h = h.time(*p.NextChangeAt)
	} else {
		h = h.str("")
	}
	h = h.str(p.NextChange)
	h = h.str(p.ConfigDigest)
	h = h.str(p.LedgerHead)
	groups := make([]string, 0, len(p.Observed))
	for g := range p.Observed {
		groups = append(groups, g)
	}
	slices.Sort(groups)
	h = h.int(len(groups))
	for _, g := range groups {
		h = h.str(g)
		h = h.str(p.Observed[g])
	}
	h = h.int(len(p.Changes))
	for _, c := range p.Changes {
		h = h.str(c.Action)
		h = h.str(c.Group)
		h = h.str(c.Target)
		h = h.str(c.Member)
		h = h.str(c.MemberName)
		h = h.str(c.Principal)
		r := c.Reason
		h = h.str(r.Kind)
		h = h.str(r.Grant)
		h = h.str(r.Policy)
		h = h.str(r.Ticket)
		h = h.int(len(r.Approvers))
		for _, a := range r.Approvers {
			h = h.str(a)
			if f, ok := r.ApproverFactors[a]; ok {
				h = h.str("factor " + f) // only when signed with a security key
			}
		}
		for _, t := range []*time.Time{r.WindowStart, r.WindowEnd} {
			if t != nil {
				h = h.time(*t)
			} else {
				h = h.str("")
			}
		}
		h = h.bool(r.BreakGlass)
		h = h.bool(r.Unreviewed)
		h = h.str(r.Detail)
		if c.ServerExpires != nil { // only when set: plan IDs without it are unchanged
			h = h.str("server_expires")
			h = h.time(*c.ServerExpires)
		}
		// Likewise only when set, so that plans of groups keep their IDs.
		if c.Kind != "" && c.Kind != KindGroup {
			h = h.str("kind")
			h = h.str(c.Kind)
		}
		if c.Object != "" {
			h = h.str("object")
			h = h.str(c.Object)
		}
		if c.PasswordRotated {
			h = h.str("password_rotated")
		}
		if len(c.Credentials) > 0 {
			h = h.str("credentials")
			h = h.int(len(c.Credentials))
			for _, cr := range c.Credentials {
				h = h.str(cr.Grant)
				h = h.str(cr.Principal)
			}
		}
	}
	h = h.int(len(p.Unreadable))
	for _, u := range p.Unreadable {
		h = h.str(u.Group)
		h = h.str(u.Target)
		h = h.str(u.Error)
		if u.Kind != "" {
			h = h.str("kind")
			h = h.str(u.Kind)
		}
	}
	for _, ws := range [][]Warning{p.Warnings, p.Errors} {
		h = h.int(len(ws))
		for _, w := range ws {
			h = h.str(w.Summary)
			h = h.str(w.Detail)
			h = h.str(w.Subject)
		}
	}
	h = h.int(len(p.Groups))
	for _, g := range p.Groups {
		h = h.str(g.Group)
		if g.Kind != "" && g.Kind != KindGroup {
			h = h.str("kind")
			h = h.str(g.Kind)
		}
		h = h.str(g.Target)
		h = h.bool(g.Exclusive)
		h = h.int(g.Observed)
		h = h.int(g.Desired)
		h = h.int(g.Adds)
		h = h.int(g.Removes)
		h = h.bool(g.Readable)
		h = h.bool(g.Blocked)
		h = h.int(len(g.Kept))
		for _, k := range g.Kept {
			h = h.str(k.Member)
			h = h.str(k.MemberName)
		}
	}
	if len(p.Accounts) > 0 {
		h = h.str("accounts")
		h = h.int(len(p.Accounts))
		for _, a := range p.Accounts {
			h = h.str(a.Account)
			h = h.str(a.Target)
			h = h.str(a.Name)
			for _, b := range []bool{a.Readable, a.Exists, a.Enabled, a.DesiredEnabled, a.RotatePassword, a.Blocked} {
				h = h.bool(b)
			}
			h = h.int(len(a.ActiveGrants))
			for _, g := range a.ActiveGrants {
				h = h.str(g)
			}
		}
	}
	return h.sum(), nil
}

// idHasher batches writes: hashing field by field through the interface
// costs more than the hashing itself. Its methods take and return it by
// value: planID keeps it in a local variable, where storing the buffer back
// after each field needs no GC write barrier (through a pointer it did, a
// third of hashing a 100,000-change plan).
type idHasher struct {
	h   hash.Hash
	buf []byte
}

func (h idHasher) int(n int) idHasher {
	h.buf = binary.BigEndian.AppendUint64(h.buf, uint64(n))
	return h.flush(false)
}

func (h idHasher) str(s string) idHasher {
	h.buf = binary.BigEndian.AppendUint64(h.buf, uint64(len(s)))
	h.buf = append(h.buf, s...)
	return h.flush(false)
}

func (h idHasher) flush(all bool) idHasher {
	if all || len(h.buf) >= 32<<10 {
		h.h.Write(h.buf)
		h.buf = h.buf[:0]
	}
	return h
}

func (h idHasher) sum() string {
	h = h.flush(true)
	return hex.EncodeToString(h.h.Sum(nil))
}

func (h idHasher) bool(b bool) idHasher {
	if b {
		return h.int(1)
	}
	return h.int(0)
}

// time hashes the instant, not its zone: a plan read back from JSON in UTC
// has the same ID.
func (h idHasher) time(t time.Time) idHasher {
	h = h.int(int(t.Unix()))
	return h.int(t.Nanosecond())
}

// Seal recomputes p.ID from p's content. Call it after changing a computed
// plan (for instance restricting it to --target groups): WritePlanFile
// writes the ID as is, and ReadPlanFile refuses a plan whose ID does not
// match its content.
func Seal(p *Plan) error {
	id, err := planID(p)
	if err != nil {
		return fmt.Errorf("seal plan: %w", err)
	}
	p.ID = id
	return nil
}
