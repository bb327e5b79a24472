package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"

	"github.com/jitform/jitform/internal/operation"
)

const importUsage = `
Usage: jitform [-C DIR] import [--target ADDR]... [--write] [--json]

Adopts existing groups: reads the members each declared group has now and
prints the members = [...] that keeps exactly them, written as principals
where the name resolves back to the same entry (alice rather than
uid=alice,ou=people,...), else as the canonical DN or SID. Members jitform
added for a grant (per the ledger) are left out and listed: adopting them
would make a just-in-time grant standing. Changes nothing in the targets
and writes no ledger event.

Run it before the first apply on an exclusive group: without it, that apply
removes everyone not declared.

  --write   rewrite the members attribute of each group block in its .hcl
            file (other attributes, comments and layout are kept); review
            the diff before you commit it

Examples:
  jitform import
  jitform import --target group.domain_admins --write && git diff
  jitform import --json | jq '.[] | select(.undeclared | length > 0)'
`

func cmdImport(ctx context.Context, a *app, args []string) int {
	fs := a.flagSet("import", importUsage)
	targets := fs.StringArray("target", nil, "only this target or group `ADDR` (repeatable)")
	write := fs.Bool("write", false, "rewrite members = [...] in the group blocks' files")
	asJSON := fs.Bool("json", false, "print what was found as JSON")
	parallelism := fs.Int("parallelism", operation.DefaultParallelism, "read at most `N` targets at once")
	if code, done := a.parse(fs, args); done {
		return code
	}
	if fs.NArg() > 0 {
		return a.errorf("import takes no arguments (got %q); select groups with --target ADDR", fs.Args())
	}
	b, err := a.backend()
	if err != nil {
		return a.errorf("%v", err)
	}
	opts := a.options(b, *parallelism, 0)
	opts.Targets = *targets
	found, err := operation.Adopt(ctx, opts)
	if err != nil {
		return a.fail(err)
	}
	if *asJSON {
		if found == nil {
			found = []operation.Adoption{}
		}
		return a.writeJSON(found)
	}
	failed := 0
	for _, ad := range found {
		if ad.Error != "" {
			failed++
			fmt.Fprintf(a.stderr, "%s: could not be read: %s\n", ad.Group, ad.Error)
			continue
		}
		note := "declares them all"
		if n := len(ad.Undeclared); n > 0 {
			note = fmt.Sprintf("%d not declared today: %s", n, strings.Join(ad.Undeclared, ", "))
			if ad.Exclusive {
				note += " (exclusive: the next apply would remove them)"
			}
		}
		fmt.Fprintf(a.stdout, "# %s on %s: %d member(s) now; %s\n", ad.Group, ad.Target, len(ad.Members), note)
		if len(ad.Unresolved) > 0 {
			fmt.Fprintf(a.stdout, "# left out, no such entry on the target (cannot be declared): %s\n", strings.Join(ad.Unresolved, ", "))
		}
		if len(ad.Granted) > 0 {
			fmt.Fprintf(a.stdout, "# left out, held through a jitform grant: %s\n", strings.Join(ad.Granted, ", "))
		}
		fmt.Fprintf(a.stdout, "members = %s\n\n", hclList(ad.Members))
	}
	if *write {
		n, err := a.writeMembers(found)
		if err != nil {
			return a.errorf("import --write: %v", err)
		}
		fmt.Fprintf(a.stderr, "Rewrote members in %d group block(s). Review with git diff, then plan.\n", n)
	}
	if failed > 0 {
		return a.errorf("%d group(s) could not be read", failed)
	}
	return exitOK
}

func hclList(xs []string) string {
	return string(hclwrite.TokensForValue(stringList(xs)).Bytes())
}

func stringList(xs []string) cty.Value {
	if len(xs) == 0 {
		return cty.ListValEmpty(cty.String)
	}
	vals := make([]cty.Value, len(xs))
	for i, x := range xs {
		vals[i] = cty.StringVal(x)
	}
	return cty.ListVal(vals)
}

// writeMembers sets members = [...] in each adopted group's block, keeping
// the rest of each file as it is. A group with one block for several hosts
// is skipped unless every host has the same members.
func (a *app) writeMembers(found []operation.Adoption) (int, error) {
	cfg, _, err := operation.LoadConfig(a.dir, time.Now().UTC())
	if err != nil {
		return 0, err
	}
	type edit struct {
		block   string // group, right or sudo_role
		name    string
		members []string
	}
	byFile := map[string][]edit{}
	perBase := map[string][]string{}
	conflict := map[string]bool{}
	for _, ad := range found {
		if ad.Error != "" {
			continue
		}
		g := cfg.GroupByAddr(ad.Group)
		if g == nil {
			continue
		}
		if prev, ok := perBase[g.BaseAddr]; ok {
			if strings.Join(prev, "\x00") != strings.Join(ad.Members, "\x00") {
				conflict[g.BaseAddr] = true
			}
			continue
		}
		perBase[g.BaseAddr] = ad.Members
		block := g.Kind
		if block == "" {
			block = "group"
		}
		byFile[g.DeclRange.Filename] = append(byFile[g.DeclRange.Filename], edit{block, g.Name, ad.Members})
	}
	n := 0
	for file, edits := range byFile {
		src, err := os.ReadFile(file)
		if err != nil {
			return n, err
		}
		f, diags := hclwrite.ParseConfig(src, file, hcl.InitialPos)
		if diags.HasErrors() {
			return n, fmt.Errorf("parse %s: %s", file, diags.Error())
		}
		changed := false
		for _, e := range edits {
			if conflict[e.block+"."+e.name] {
				fmt.Fprintf(a.stderr, "%s.%s: its hosts have different members; set members by hand\n", e.block, e.name)
				continue
			}
			for _, blk := range f.Body().Blocks() {
				if blk.Type() == e.block && len(blk.Labels()) == 1 && blk.Labels()[0] == e.name {
					blk.Body().SetAttributeValue("members", stringList(e.members))
					changed = true
					n++
				}
			}
		}
		if !changed {
			continue
		}
		fi, err := os.Stat(file)
		if err != nil {
			return n, err
		}
		if err := os.WriteFile(file, hclwrite.Format(f.Bytes()), fi.Mode().Perm()); err != nil {
			return n, err
		}
	}
	return n, nil
}
