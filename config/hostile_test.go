package config

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// groupWith is a repository whose group "g" has attr = expr.
func groupWith(attr, expr string) string {
	return minimalRepo + "\ngroup \"g\" {\n  target = target.ldif.export\n  dn     = \"cn=g,dc=example\"\n  " + attr + " = " + expr + "\n}\n"
}

// TestNestingIsBoundedBeforeParsing: input nested deeper than MaxNesting
// (which overflows the HCL parser's stack at 100k, or takes seconds at
// 50k) is refused with a diagnostic at the spot, quickly, whatever hides
// it (strings, templates, heredocs); comments and the literal text of
// strings do not count, and MaxNesting itself still parses.
func TestNestingIsBoundedBeforeParsing(t *testing.T) {
	t.Parallel()
	deep := func(open, close string, n int) string { return strings.Repeat(open, n) + strings.Repeat(close, n) }
	cases := []struct {
		name, src string
		refused   bool
	}{
		{"100k nested brackets", groupWith("members", deep("[", "]", 100000)), true},
		{"100k nested braces", groupWith("members", deep("{a=", "}", 100000)), true},
		{"50k unbalanced parentheses", groupWith("dn", strings.Repeat("(", 50000)), true},
		{"50k unbalanced closing parentheses", groupWith("dn", strings.Repeat(")", 50000)), false},
		{"mismatched closers do not hide depth", groupWith("dn", strings.Repeat("(]", 50000)), true},
		{"nested interpolations in a string", groupWith("dn", strings.Repeat(`"${`, 20000)+strings.Repeat(`}"`, 20000)), true},
		{"parentheses in an interpolation", groupWith("dn", `"${`+strings.Repeat("(", 50000)+`}"`), true},
		{"heredoc interpolation", groupWith("dn", "<<EOT\n${"+strings.Repeat("(", 50000)+"\nEOT"), true},
		{"heredoc backslash is not an escape", groupWith("dn", "<<-EOT\n\"\\${"+strings.Repeat("(", 50000)+"\n  EOT"), true},
		{"heredoc hash is not a comment", groupWith("dn", "<<EOT\n# ${"+strings.Repeat("[", 50000)+"\nEOT"), true},
		{"top level", strings.Repeat("{", 100000), true},
		{"in a comment", "# " + strings.Repeat("(", 100000) + "\n/* " + strings.Repeat("[", 1000) + " */\n" + groupWith("dn", `"cn=x"`), false},
		{"literal text of a string", groupWith("dn", `"cn=`+strings.Repeat("(", 5000)+`$${((( %%{ \"((("`), false},
		{"literal text of a heredoc", groupWith("dn", "<<EOT\n"+strings.Repeat("(", 5000)+"\nEOT"), false},
		// The group block is one level.
		{"MaxNesting deep", groupWith("members", deep("[", "]", MaxNesting-1)), false},
		{"MaxNesting+1 deep", groupWith("members", deep("[", "]", MaxNesting)), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			_, diags := LoadFiles("repo", map[string][]byte{"main.hcl": []byte(tc.src)}, testOptions())
			took := time.Since(start)
			text := renderDiags(diags)
			refused := strings.Contains(text, "Expression nested too deeply")
			if strings.Contains(text, "Expression too long") {
				t.Fatalf("refused as too long:\n%.1000s", text)
			}
			if refused != tc.refused {
				t.Fatalf("refused = %v, want %v:\n%.2000s", refused, tc.refused, text)
			}
			if refused && (!strings.Contains(text, "repo/main.hcl:") || !strings.Contains(text, fmt.Sprintf("more than %d levels", MaxNesting))) {
				t.Errorf("the diagnostic does not say where and why:\n%s", text)
			}
			if refused && took > 2*time.Second {
				t.Errorf("refusing took %s", took)
			}
		})
	}
}

// TestConfigFilesAreBounded: a *.hcl file over MaxConfigFileSize, or one
// that is a fifo or a device, is refused with a diagnostic instead of read.
func TestConfigFilesAreBounded(t *testing.T) {
	t.Parallel()
	dir := writeFiles(t, map[string]string{"main.hcl": minimalRepo})
	big := "# " + strings.Repeat("x", MaxConfigFileSize) + "\n"
	if err := os.WriteFile(filepath.Join(dir, "big.hcl"), []byte(big), 0o644); err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" {
		if err := syscall.Mkfifo(filepath.Join(dir, "pipe.hcl"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("/dev/zero", filepath.Join(dir, "zero.hcl")); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan string, 1)
	go func() {
		_, diags := Load(dir, testOptions())
		done <- renderDiags(diags)
	}()
	var text string
	select {
	case text = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Load blocked")
	}
	for _, want := range []string{
		fmt.Sprintf("big.hcl is %d bytes; jitform reads configuration files of at most %d bytes (8 MiB)", len(big), MaxConfigFileSize),
		"pipe.hcl: not a regular file (a fifo)",
		"zero.hcl: not a regular file (a character device)",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("diagnostics lack %q:\n%s", want, text)
		}
	}
	// Files handed in directly are bounded too.
	_, diags := LoadFiles("repo", map[string][]byte{"big.hcl": []byte(big)}, testOptions())
	if !strings.Contains(renderDiags(diags), "Configuration file too large") {
		t.Errorf("LoadFiles read an oversized file:\n%s", renderDiags(diags))
	}
}

// TestLoadStopsWhenCancelled: a signal (a done context) stops loading
// with an error diagnostic, instead of decoding everything first.
func TestLoadStopsWhenCancelled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	opts := testOptions()
	opts.Context = ctx
	for name, load := range map[string]func() string{
		"Load": func() string {
			_, d := Load(writeFiles(t, map[string]string{"main.hcl": minimalRepo}), opts)
			return renderDiags(d)
		},
		"LoadFiles": func() string {
			_, d := LoadFiles("bench", benchRepo(10, 1), opts)
			return renderDiags(d)
		},
	} {
		if text := load(); !strings.Contains(text, "Loading was interrupted") || !strings.Contains(text, "context canceled") {
			t.Errorf("%s with a cancelled context: %s", name, text)
		}
	}
}

// membersRepo is a repository of groups holding `members` members in all,
// at most perGroup per group, in files of at most ten groups each, plus a
// policy and grants naming them.
func membersRepo(members, perGroup int) map[string][]byte {
	files := map[string][]byte{"targets.hcl": []byte(minimalRepo)}
	var b strings.Builder
	groups := 0
	for left := members; left > 0; left -= perGroup {
		n := min(left, perGroup)
		fmt.Fprintf(&b, "group \"m%d\" {\n  target  = target.ldif.export\n  dn      = \"cn=m%d,dc=example\"\n  members = [\n", groups, groups)
		for i := range n {
			fmt.Fprintf(&b, "    \"user%d\",\n", i)
		}
		b.WriteString("  ]\n}\n")
		groups++
		if groups%10 == 0 || left <= perGroup {
			files[fmt.Sprintf("groups%03d.hcl", groups)] = []byte(b.String())
			b.Reset()
		}
	}
	return files
}

// TestValidateIsLinearInMembers: 100,000 members in one group validate in
// seconds (they took 25 s at 20,000 when conversion was quadratic, so
// 100,000 would take about ten minutes).
func TestValidateIsLinearInMembers(t *testing.T) {
	t.Parallel()
	files := membersRepo(100000, 100000)
	start := time.Now()
	cfg, diags := LoadFiles("bench", files, testOptions())
	diags = append(diags, CheckGrants(cfg)...)
	if g := cfg.GroupByAddr("group.m0"); diags.HasErrors() || g == nil || len(g.Members) != 100000 {
		t.Fatalf("groups %d:\n%.2000s", len(cfg.Groups), renderDiags(diags))
	}
	if took := time.Since(start); took > 60*time.Second {
		t.Errorf("100,000 members took %s", took)
	}
	// A list that is not all strings is refused at the attribute.
	_, diags = LoadFiles("bench", map[string][]byte{"main.hcl": []byte(groupWith("members", `["a", ["b"], "c"]`))}, testOptions())
	if !strings.Contains(renderDiags(diags), "members must be a list of strings; element 1 is not a string") {
		t.Errorf("nested list: %s", renderDiags(diags))
	}
	// Numbers and bools become strings, as before.
	cfg, diags = LoadFiles("bench", map[string][]byte{"main.hcl": []byte(groupWith("members", `["a", 1, true, -5, 1.5, 12345678901234, 1e30]`))}, testOptions())
	if diags.HasErrors() || strings.Join(cfg.Groups[1].Members, ",") != "a,1,true,-5,1.5,12345678901234,1000000000000000000000000000000" {
		t.Errorf("mixed list: %v %s", cfg.Groups, renderDiags(diags))
	}
}

// BenchmarkValidateMembers is `jitform validate` (load and check) of a
// repository with 10k, 100k and 1M members, 10,000 per group.
func BenchmarkValidateMembers(b *testing.B) {
	for _, n := range []int{10000, 100000, 1000000} {
		files := membersRepo(n, 10000)
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				cfg, diags := LoadFiles("bench", files, testOptions())
				diags = append(diags, CheckGrants(cfg)...)
				if diags.HasErrors() {
					b.Fatal(renderDiags(diags))
				}
			}
		})
	}
}

// TestMaxActiveCountsLikeTheLoop: the indexed count of overlapping grants
// agrees with comparing every pair, on random windows.
func TestMaxActiveCountsLikeTheLoop(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	base := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	for round := range 200 {
		n := 1 + r.IntN(30)
		gs := make([]*Grant, n)
		c := &windowCounter{}
		for i := range gs {
			gs[i] = &Grant{Start: base.Add(time.Duration(r.IntN(20)) * time.Hour), Duration: time.Duration(1+r.IntN(6)) * time.Hour}
			c.prepare(gs[i])
		}
		c.index()
		for i, g := range gs {
			want := 0
			for _, o := range gs[:i] {
				if o.Start.Before(g.End()) && g.Start.Before(o.End()) {
					want++
				}
			}
			if got := c.overlapping(g); got != want {
				t.Fatalf("round %d grant %d: %d overlapping, want %d", round, i, got, want)
			}
			c.add(g)
		}
	}
}

// TestIndexedPolicyCheckAgrees: CheckGrants' indexed eligibility and
// approver checks give what Policy.Check gives, non-ASCII names included.
func TestIndexedPolicyCheckAgrees(t *testing.T) {
	t.Parallel()
	p := &Policy{Addr: "policy.p", Eligible: []string{"alice", "ſam", "group:cn=ops,dc=x", "Zoë"}, Approvers: []string{"carol", "ſtan", "DAVE"}, Approvals: 1}
	sets := p.sets()
	for _, principal := range []string{"alice", "ALICE", "sam", "ſam", "zoë", "ZOË", "bob", "K"} {
		for _, approvers := range [][]string{{"carol"}, {"stan"}, {"ſtan"}, {"dave"}, {"mallory"}, {"carol", "CAROL"}} {
			g := GrantSpec{Principal: principal, Start: time.Unix(0, 0), End: time.Unix(3600, 0), Approvers: approvers}
			in := func(string) bool { return principal == "bob" }
			a, b := fmt.Sprint(p.Check(g, in)), fmt.Sprint(p.check(g, in, sets))
			if a != b {
				t.Errorf("%s approved by %v: Check %s, indexed %s", principal, approvers, a, b)
			}
		}
	}
}

// TestOperatorChainsAreBoundedBeforeParsing: the parser and evaluator
// also recurse once per unary operator, conditional, splat and index; a
// chain of 200,000 overflowed the stack (splat) or took seconds each, so
// more than MaxChain at one level is refused before parsing. Lists of
// any length, and many attributes, are not chains.
func TestOperatorChainsAreBoundedBeforeParsing(t *testing.T) {
	t.Parallel()
	const n = 200000
	cases := []struct {
		name, src string
		refused   bool
	}{
		{"not", groupWith("exclusive", strings.Repeat("!", n)+"true"), true},
		{"negation", groupWith("dn", strings.Repeat("-", n)+"1"), true},
		{"conditionals", groupWith("dn", strings.Repeat("true ? \"a\" : ", n)+`"b"`), true},
		{"sums", groupWith("dn", strings.Repeat("1 + ", n)+"1"), true},
		{"splats", groupWith("members", "[\"a\"]"+strings.Repeat("[*]", n)), true},
		{"indexes", groupWith("members", "[[\"a\"]]"+strings.Repeat("[0]", n)), true},
		{"in an interpolation", groupWith("dn", `"${`+strings.Repeat("!", n)+`true}"`), true},
		{"a long list of negative numbers", groupWith("members", "["+strings.Repeat("-1, ", 20000)+"-1]"), false},
		{"many attributes of one operator each", minimalRepo + strings.Repeat("grant \"g\" {\n  duration = \"1h\"\n}\n", 2000), false},
		{"MaxChain at one level", groupWith("dn", strings.Repeat("!", MaxChain-1)+"true"), false},
		{"operators in strings and comments", groupWith("dn", `"`+strings.Repeat("-!?", n)+`"`) + "# " + strings.Repeat("!", n) + "\n", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			_, diags := LoadFiles("repo", map[string][]byte{"main.hcl": []byte(tc.src)}, testOptions())
			took := time.Since(start)
			text := renderDiags(diags)
			refused := strings.Contains(text, "Expression too long")
			if refused != tc.refused {
				t.Fatalf("refused = %v, want %v:\n%.1000s", refused, tc.refused, text)
			}
			if refused && (!strings.Contains(text, "repo/main.hcl:14:") || took > 2*time.Second) {
				t.Errorf("took %s; the diagnostic should point at line 14:\n%s", took, text)
			}
		})
	}
}

// TestValidIdentifierAgreesWithHCL: the fast path gives HCL's answer.
func TestValidIdentifierAgreesWithHCL(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "a", "A9", "_x", "a-b", "a_b-c9", "-a", "9a", "a b", "a.b", "a\"", "é", "aé", "a\x00", "ab-", "a--b", "__", "-", "Ωmega", "a\u200d"} {
		if got, want := validIdentifier(s), hclsyntax.ValidIdentifier(s); got != want {
			t.Errorf("validIdentifier(%q) = %v, HCL says %v", s, got, want)
		}
	}
}
