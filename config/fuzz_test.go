package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// FuzzLoadFiles: no input makes LoadFiles, CheckGrants or Format panic, the
// Config is never nil, and every error has a source range to show. Seeds are
// the testdata files plus testdata/fuzz/FuzzLoadFiles.
func FuzzLoadFiles(f *testing.F) {
	paths, _ := filepath.Glob("testdata/*.hcl")
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	opts := LoadOptions{
		PlanTime:  time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC),
		LookupEnv: func(string) (string, bool) { return "fuzz-secret", true },
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		// dir is a path that does not exist, so file() reads nothing real.
		cfg, diags := LoadFiles("/nonexistent-fuzz-dir", map[string][]byte{"main.hcl": src}, opts)
		if cfg == nil {
			t.Fatal("nil Config")
		}
		for _, d := range diags {
			if d.Subject == nil {
				t.Fatalf("diagnostic without a range: %s: %s", d.Summary, d.Detail)
			}
		}
		CheckGrants(cfg)
		for _, p := range cfg.Policies {
			for _, w := range p.Windows {
				at := time.Date(2026, 3, 29, 1, 30, 0, 0, time.UTC)
				w.Contains(at)
				w.NextBoundary(at)
			}
		}
		Format(src)
	})
}

// FuzzParseWindow: any spec either fails or yields a window whose
// NextBoundary is a real change of Contains.
func FuzzParseWindow(f *testing.F) {
	for _, s := range []string{"Mon-Fri 07:00-19:00 Europe/Berlin", "Fri-Mon 22:00-02:00 UTC", "daily 00:00-24:00 UTC", "Sun 02:30-03:30 Europe/Berlin"} {
		f.Add(s, int64(1774746000))
	}
	f.Fuzz(func(t *testing.T, spec string, unix int64) {
		w, err := ParseWindow(spec)
		if err != nil {
			return
		}
		at := time.Unix(unix%(1<<33), 0).UTC()
		b := w.NextBoundary(at)
		if b.IsZero() {
			return
		}
		if !b.After(at) {
			t.Fatalf("NextBoundary(%s) = %s, not after", at, b)
		}
		if w.Contains(b) == w.Contains(b.Add(-time.Nanosecond)) {
			t.Fatalf("%q: no change at the boundary %s", spec, b)
		}
	})
}

// FuzzCheckNesting: the pre-parse scan never panics, and whatever it lets
// through parses and evaluates without exhausting the stack (a crash the
// fuzzer reports). Seeds are deep and tricky shapes, cut short.
func FuzzCheckNesting(f *testing.F) {
	for _, s := range []string{
		"x = [[[[[]]]]]\n", `x = "${"${(((1)))}"}"` + "\n", "x = <<EOT\n${[[1]]}\n\\${((1))}\nEOT\n",
		"x = <<-EOT\n  # ${{a={b=1}}}\n  EOT\n", "x = !!!!true\n", "x = true ? 1 : false ? 2 : 3\n",
		"x = [1][*][*][0]\n", "/* ((( */ x = 1 # [[[\n", `x = "$${((( %%{ \"(("` + "\n", "x = (]\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		if checkNesting(src, "f.hcl") != nil {
			return
		}
		file, _ := hclsyntax.ParseConfig(src, "f.hcl", hcl.InitialPos)
		if file == nil {
			return
		}
		if body, ok := file.Body.(*hclsyntax.Body); ok {
			for _, a := range body.Attributes {
				a.Expr.Value(&hcl.EvalContext{})
			}
		}
	})
}
