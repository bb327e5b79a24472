package planner

import (
	"bufio"
	"fmt"
	"github.com/jitform/jitform/internal/ansi"
	"github.com/jitform/jitform/internal/parallel"
	"io"
	"strings"
	"time"

	"github.com/jitform/jitform/internal/grants"
)

const (
	ansiRed    = ansi.Red
	ansiGreen  = ansi.Green
	ansiYellow = ansi.Yellow
	ansiBold   = ansi.Bold
)

// RenderText writes the plan for people, Terraform-like: one block per
// group with changes, one line per change naming its justification, then
// unreadable groups, errors, warnings, a summary and when to plan again.
// Lines read on their own, so an auditor can grep them. color adds ANSI
// colours (the caller decides: a terminal, and no NO_COLOR).
func RenderText(w io.Writer, p *Plan, color bool) error {
	bw := bufio.NewWriter(w)
	paint := ansi.Painter(color).Paint
	fmt.Fprintf(bw, "jitform plan %s for %s\n", shortID(p.ID), stamp(p.At))

	changed := make(map[string]bool, len(p.Groups))
	for _, c := range p.Changes {
		changed[c.Group] = true
	}
	// Each change's line depends on the change alone: built on every core
	// (a plan may hold 100,000), written in order below.
	lines := make([]string, len(p.Changes))
	parallel.Chunks(len(p.Changes), 4096, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			lines[i] = changeLine(p.Changes[i])
		}
	})
	unchanged := 0
	i := 0
	for _, g := range p.Groups {
		if !changed[g.Group] && len(g.Kept) == 0 {
			if g.Readable && !g.Blocked {
				unchanged++
			}
			continue
		}
		noun := map[string]string{KindRight: "holders", KindSudoRole: "sudoUsers"}[g.Kind]
		if noun == "" {
			noun = "members"
		}
		excl := "non-exclusive: only " + noun + " jitform added are removed"
		if g.Exclusive {
			excl = "exclusive: " + noun + " neither declared nor granted are removed"
		}
		fmt.Fprintf(bw, "\n%s on %s (%s)\n", paint(ansiBold, g.Group), g.Target, excl)
		for ; i < len(p.Changes) && p.Changes[i].Group == g.Group; i++ {
			c := p.Changes[i]
			line := lines[i]
			switch {
			case c.Action == "add":
				line = paint(ansiGreen, line)
			default:
				line = paint(ansiRed, line)
			}
			bw.WriteString("  ")
			bw.WriteString(line)
			bw.WriteByte('\n')
		}
		for _, k := range g.Kept {
			name := ""
			if k.MemberName != "" && k.MemberName != k.Member {
				name = " (" + k.MemberName + ")"
			}
			fmt.Fprintf(bw, "  = %s%s  left alone: not added by jitform, and the group is non-exclusive\n", k.Member, name)
		}
	}
	for _, a := range p.Accounts {
		if i >= len(p.Changes) || p.Changes[i].Group != a.Account {
			continue
		}
		how := "enabled only while a grant for it is active"
		if a.Ephemeral {
			how = "one account per active grant, created for it and deleted after; its password goes only to the grant's principal"
		} else if a.RotatePassword {
			how += "; password rotated at enable and disable"
		}
		fmt.Fprintf(bw, "\n%s on %s (%s)\n", paint(ansiBold, a.Account), a.Target, how)
		for ; i < len(p.Changes) && p.Changes[i].Group == a.Account; i++ {
			line := lines[i]
			if act := p.Changes[i].Action; act == ActionEnable || act == ActionCreate {
				line = paint(ansiGreen, line)
			} else {
				line = paint(ansiRed, line)
			}
			fmt.Fprintf(bw, "  %s\n", line)
		}
	}
	if unchanged > 0 {
		fmt.Fprintf(bw, "\n%d %s unchanged: membership matches the policy.\n", unchanged, plural(unchanged, "group", "groups"))
	}
	if len(p.Unreadable) > 0 {
		fmt.Fprintf(bw, "\n%s\n", paint(ansiYellow, "Unreadable groups (nothing is planned for them):"))
		for _, u := range p.Unreadable {
			// Provider errors name their target; the line already does.
			fmt.Fprintf(bw, "  ! %s on %s: %s\n", u.Group, u.Target, strings.TrimPrefix(u.Error, u.Target+": "))
		}
	}
	if len(p.Errors) > 0 {
		fmt.Fprintf(bw, "\n%s\n", paint(ansiRed, "Errors (the groups concerned get no changes; apply refuses this plan):"))
		for _, e := range p.Errors {
			fmt.Fprintf(bw, "  ✗ %s\n", diagLine(e))
		}
	}
	if len(p.Warnings) > 0 {
		fmt.Fprintf(bw, "\n%s\n", paint(ansiYellow, "Warnings:"))
		for _, e := range p.Warnings {
			fmt.Fprintf(bw, "  ! %s\n", diagLine(e))
		}
	}
	adds, removes, enables, disables, creates, deletes := 0, 0, 0, 0, 0, 0
	for _, c := range p.Changes {
		switch c.Action {
		case "add":
			adds++
		case ActionEnable:
			enables++
		case ActionDisable:
			disables++
		case ActionCreate:
			creates++
		case ActionDelete:
			deletes++
		default:
			removes++
		}
	}
	switch {
	case creates+deletes > 0:
		fmt.Fprintf(bw, "\nPlan: %d to add, %d to remove, %d %s to enable, %d to disable, %d to create, %d to delete.\n", adds, removes, enables, plural(enables, "account", "accounts"), disables, creates, deletes)
	case enables+disables > 0:
		fmt.Fprintf(bw, "\nPlan: %d to add, %d to remove, %d %s to enable, %d to disable.\n", adds, removes, enables, plural(enables, "account", "accounts"), disables)
	case adds+removes == 0 && len(p.Unreadable) > 0:
		// Say nothing about groups nobody could read.
		fmt.Fprintf(bw, "\nNo changes for the groups that could be read; %d could not be.\n", len(p.Unreadable))
	case adds+removes == 0:
		fmt.Fprintf(bw, "\nNo changes. Membership matches the policy.\n")
	default:
		fmt.Fprintf(bw, "\nPlan: %d to add, %d to remove.\n", adds, removes)
	}
	if p.NextChangeAt != nil {
		fmt.Fprintf(bw, "Next change at %s (%s). This plan is valid until %s.\n", stamp(*p.NextChangeAt), p.NextChange, stamp(p.ValidUntil))
	} else {
		fmt.Fprintf(bw, "No change is scheduled. This plan is valid until %s.\n", stamp(p.ValidUntil))
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write plan: %w", err)
	}
	return nil
}

// changeLine is one change and its justification on one line.
func changeLine(c Change) string {
	var b strings.Builder
	switch {
	case c.Kind == KindAccount:
		// ~ account jit-admin on web01: enable (password rotated) for alice
		// + account adm-alice-k3x9 on corp: create (password rotated) for alice
		sign := map[string]string{ActionCreate: "+", ActionDelete: "-"}[c.Action]
		if sign == "" {
			sign = "~"
		}
		fmt.Fprintf(&b, "%s account %s on %s: %s", sign, c.Object, targetName(c.Target), c.Action)
		if c.PasswordRotated {
			b.WriteString(" (password rotated)")
		}
		if (c.Action == ActionEnable || c.Action == ActionCreate) && c.PasswordRotated && len(c.Credentials) > 0 {
			who := make([]string, len(c.Credentials))
			for i, cr := range c.Credentials {
				who[i] = cr.Principal
			}
			fmt.Fprintf(&b, " for %s", strings.Join(who, ", "))
		}
	case c.Action == "add":
		b.WriteString("+ ")
	default:
		b.WriteString("- ")
	}
	if c.Kind == KindRight || c.Kind == KindSudoRole {
		// + SeBackupPrivilege on web01: CORP\alice (S-1-5-21-...)
		obj := c.Object
		if c.Kind == KindSudoRole {
			obj = "sudoRole " + obj
		}
		who := c.Principal
		if who == "" {
			who = c.MemberName
		}
		if who == "" {
			who = c.Member
		}
		fmt.Fprintf(&b, "%s on %s: %s", obj, targetName(c.Target), who)
		if who != c.Member {
			fmt.Fprintf(&b, " (%s)", c.Member)
		}
	} else if c.Kind != KindAccount {
		// The common line of a large plan: written without fmt.
		b.WriteString(c.Member)
		if who := c.Principal; who != "" || c.MemberName != "" {
			if who == "" {
				who = c.MemberName
			}
			if who != c.Member {
				b.WriteString(" (")
				b.WriteString(who)
				b.WriteByte(')')
			}
		}
	}
	if c.ServerExpires != nil {
		fmt.Fprintf(&b, " [expires server-side at %s]", stamp(*c.ServerExpires))
	}
	b.WriteString("  ")
	r := c.Reason
	switch r.Kind {
	case ReasonGrant:
		writeGrantWords(&b, r)
		if r.WindowEnd != nil {
			b.WriteString(", until ")
			var buf [32]byte
			b.Write(r.WindowEnd.UTC().AppendFormat(buf[:0], time.RFC3339))
		}
	case ReasonDeclared:
		b.WriteString("declared member")
	case ReasonWindowEnded:
		if r.WindowEnd != nil && r.Detail == "window ended "+stamp(*r.WindowEnd) {
			fmt.Fprintf(&b, "window ended %s", stamp(*r.WindowEnd))
		} else {
			fmt.Fprintf(&b, "window closed: %s", r.Detail)
		}
		fmt.Fprintf(&b, " (%s)", grantWords(r))
		return b.String()
	case ReasonRevoked:
		fmt.Fprintf(&b, "%s (%s)", r.Detail, grantWords(r))
		return b.String()
	case ReasonPolicyChanged:
		fmt.Fprintf(&b, "policy changed: %s", r.Detail)
		if r.Grant != "" {
			fmt.Fprintf(&b, " (%s)", grantWords(r))
		}
		return b.String()
	case ReasonUndeclared:
		fmt.Fprintf(&b, "undeclared: %s", r.Detail)
		return b.String()
	default:
		fmt.Fprintf(&b, "%s: %s", r.Kind, r.Detail)
		return b.String()
	}
	if r.Detail != "" && r.Kind != ReasonDeclared {
		fmt.Fprintf(&b, "; %s", r.Detail)
	}
	return b.String()
}

// targetName is how a change line names a host or directory: web01 for
// target.winrm.web01, web02 for target.winrm.web["web02"].
func targetName(addr string) string {
	if i := strings.Index(addr, "[\""); i >= 0 && strings.HasSuffix(addr, "\"]") {
		return addr[i+2 : len(addr)-2]
	}
	if i := strings.LastIndex(addr, "."); i >= 0 {
		return addr[i+1:]
	}
	return addr
}

// grantWords names a grant the way an auditor reads it.
func grantWords(r Reason) string {
	var b strings.Builder
	writeGrantWords(&b, r)
	return b.String()
}

func writeGrantWords(b *strings.Builder, r Reason) {
	b.WriteString(r.Grant)
	if r.Policy != "" {
		b.WriteByte(' ')
		b.WriteString(r.Policy)
	}
	if r.Ticket != "" {
		b.WriteString(" ticket ")
		b.WriteString(r.Ticket)
	}
	if r.BreakGlass {
		if r.Unreviewed {
			b.WriteString(" BREAK-GLASS, not yet reviewed")
		} else {
			b.WriteString(" break-glass")
		}
	}
	if len(r.Approvers) > 0 {
		b.WriteString(" approved by ")
		b.WriteString(approversText(r))
	} else if !r.BreakGlass {
		b.WriteString(" (no approvers)")
	}
}

func diagLine(d Warning) string {
	s := d.Summary
	if d.Detail != "" {
		s += ": " + d.Detail
	}
	if d.Subject != "" {
		s += " (" + d.Subject + ")"
	}
	return s
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// approversText names each approver and, for an approval signed with a
// security key, the factor: "carol (security key, user verified), dave".
func approversText(r Reason) string {
	parts := make([]string, len(r.Approvers))
	for i, a := range r.Approvers {
		parts[i] = a
		if f := grants.FactorText(r.ApproverFactors[a]); f != "" {
			parts[i] += " (" + f + ")"
		}
	}
	return strings.Join(parts, ", ")
}
