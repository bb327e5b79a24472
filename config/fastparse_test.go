package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// sameAsHCL fails unless parseFile gives exactly hclsyntax.ParseConfig's
// tree and diagnostics for src. fast says whether the fast path must have
// built the tree (rather than handing the whole file to hclsyntax).
func sameAsHCL(t *testing.T, name string, src []byte, fast bool) {
	t.Helper()
	got, gotDiags := parseFile(src, name)
	if d := checkNesting(src, name); d != nil {
		// parseFile must refuse what the scan refuses, with its diagnostic.
		if got != nil || len(gotDiags) != 1 || !reflect.DeepEqual(gotDiags[0], d) {
			t.Fatalf("%s: checkNesting refuses the file (%v) but parseFile gives %v", name, d, gotDiags)
		}
		return
	}
	want, wantDiags := hclsyntax.ParseConfig(src, name, hcl.InitialPos)
	if !reflect.DeepEqual(gotDiags, wantDiags) {
		t.Fatalf("%s: diagnostics differ:\n got %v\nwant %v", name, gotDiags, wantDiags)
	}
	if !reflect.DeepEqual(got.Body, want.Body) {
		gb, wb := got.Body.(*hclsyntax.Body), want.Body.(*hclsyntax.Body)
		if !reflect.DeepEqual(gb.SrcRange, wb.SrcRange) || !reflect.DeepEqual(gb.EndRange, wb.EndRange) {
			t.Fatalf("%s: root ranges differ: got %v / %v, want %v / %v", name, gb.SrcRange, gb.EndRange, wb.SrcRange, wb.EndRange)
		}
		for i := range min(len(gb.Blocks), len(wb.Blocks)) {
			if !reflect.DeepEqual(gb.Blocks[i], wb.Blocks[i]) {
				g, w := gb.Blocks[i], wb.Blocks[i]
				for n, a := range w.Body.Attributes {
					if !reflect.DeepEqual(g.Body.Attributes[n], a) {
						t.Fatalf("%s: block %d attribute %s differs:\n got %#v\nwant %#v", name, i, n, g.Body.Attributes[n], a)
					}
				}
				t.Fatalf("%s: block %d differs:\n got %#v\nwant %#v\n got body %#v\nwant body %#v", name, i, g, w, g.Body, w.Body)
			}
		}
		t.Fatalf("%s: trees differ (%d vs %d blocks)", name, len(gb.Blocks), len(wb.Blocks))
	}
	if !reflect.DeepEqual(got.Bytes, want.Bytes) || !reflect.DeepEqual(got.Nav, want.Nav) {
		t.Fatalf("%s: file bytes or navigation differ", name)
	}
	if fp, ok := fastParse(src, name); fast && (!ok || len(fp.slow) > 0) {
		t.Fatalf("%s: the fast path gave up", name)
	}
}

func TestParseFileSameAsHCL(t *testing.T) {
	for name, src := range benchRepo(20, 2) {
		sameAsHCL(t, name, src, true)
	}
	var paths []string
	for _, glob := range []string{"testdata/*.hcl", "../examples/*/*.hcl", "../examples/*.hcl", "../testdata/*/*.hcl", "../testdata/*.hcl"} {
		m, _ := filepath.Glob(glob)
		paths = append(paths, m...)
	}
	if len(paths) < 5 {
		t.Fatalf("only %d corpus files", len(paths))
	}
	for _, p := range paths {
		src, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		sameAsHCL(t, p, src, false)
	}
	for i, src := range []string{
		"",
		"\n\n",
		"   ",
		"# only a comment\n",
		"# a comment without a newline",
		"/* x */",
		"/* a\nb */ group \"g\" {\n}\n",
		"group \"g\" {\n}",
		"group \"g\" {\n}   \n\n",
		"group g {\n  a = \"\"\n  b = []\n  c = [\n  ]\n  d = [\"x\",]\n  e = [\n    \"x\",\n    \"y\"\n  ]\n}\n",
		"group \"g\" {\n  a = true\n  b = false\n  c = null\n  d = target.ldap.corp\n  e = x\n  f = _x-y.z_1\n}\n",
		"group \"g\" {\n  a = true.x\n}\n",
		"group \"g\" {\n  a = \"x\" \n  \n}\n# c\n// d\n/* e */\ngroup \"h\" \"i\" {\n}\n",
		"group \"g\" {\n  a = \"x\"\n} # trailing\ngroup \"h\" {\n}\n",
		"group \"g\" {\n  a = \"x\"\n} group \"h\" {\n}\n",
		"group \"g\" {\n  a = \"x\"\n  a = \"y\"\n}\n",
		"group \"g\" {\n  a = \"a$b%c$\"\n  b = \"100%\"\n  c = \"$\"\n  d = \"%%{\"\n  e = \"$$\"\n}\n",
		"group \"g\" {\n  a = \"^CHG[0-9]+$\"\n  b = \"${x}\"\n  c = \"$${x}\"\n  d = \"%{if true}y%{endif}\"\n  e = \"\\\"q\\\"\"\n  f = 1\n  g = -1\n  h = env(\"X\")\n  i = [for x in y: x]\n  j = a[\"b\"]\n  k = <<EOT\nhello }\nEOT\n}\ngroup \"h\" {\n  a = \"x\"\n}\n",
		"group \"g\" {\n  tls {\n    a = \"x\"\n  }\n  b = { c = \"d\" }\n}\n",
		"group \"g\" { a = \"x\" }\ngroup \"h\" {\n}\n",
		"group \"g\" {\n  a = \"x\"\n",
		"group \"g\" {\n  a = \"x\n}\n",
		"group \"g\" {\n  a = \"x\"\n}}\n",
		"a = \"x\"\ngroup \"g\" {\n}\n",
		"group \"g\" {\n\ta = \"x\"\n}\n",
		"group \"g\" {\r\n  a = \"x\"\r\n}\r\n",
		"group \"é\" {\n  a = \"é\"\n}\n",
		"group \"g\" {\n  a = \"x\" # c\n}\n",
		"group \"g\" {\n  a = [\"x\", # c\n  \"y\"]\n}\n",
		"group \"g\" {\n  a = \"x\"\n}\ngroup \"h\" {\n  a = \"${\"}\"}\"\n}\ngroup \"i\" {\n  a = \"x\"\n}\n",
		"group \"g\" {\n  a == \"x\"\n}\n",
		"group \"g\" {\n  a = \"x\" \"y\"\n}\n",
		"group \"g\" {\n  a = x.y[0]\n  b = x.y(1)\n}\n",
		"group \"g\" {\n  a = [\"x\" \"y\"]\n}\n",
		"group \"g\" {\n  a = x" + strings.Repeat("-y", 300) + "\n}\n",
		"group \"g\" {\n  a = \"x\"\n}\ngroup \"h\" {\n  a = " + strings.Repeat("[", 200) + strings.Repeat("]", 200) + "\n}\n",
		"\ufeffgroup \"g\" {\n}\n",
		"group \"g\" {\n  a = \"x\"\n}\n/* unterminated\n",
	} {
		sameAsHCL(t, "case"+strings.Repeat("_", i%3)+".hcl", []byte(src), false)
	}
}

// FuzzParseFile: parseFile returns hclsyntax's own tree and diagnostics
// for any input.
func FuzzParseFile(f *testing.F) {
	for _, src := range benchRepo(2, 1) {
		f.Add(src)
	}
	paths, _ := filepath.Glob("testdata/*.hcl")
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		sameAsHCL(t, "f.hcl", src, false)
	})
}

// BenchmarkParseFile: parseFile on 10,000 grants (one file), against
// hclsyntax.ParseConfig on the same file.
func BenchmarkParseFile(b *testing.B) {
	src := benchRepo(100, 10)["grants.hcl"]
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(src)))
		for b.Loop() {
			if _, diags := parseFile(src, "grants.hcl"); diags.HasErrors() {
				b.Fatal(diags)
			}
		}
	})
	b.Run("hclsyntax", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(src)))
		for b.Loop() {
			if _, diags := hclsyntax.ParseConfig(src, "grants.hcl", hcl.InitialPos); diags.HasErrors() {
				b.Fatal(diags)
			}
		}
	})
}
