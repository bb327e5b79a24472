package ldif

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jitform/jitform/config"
)

// FuzzParseLDIF: no input makes parsing, reading groups or re-encoding
// panic, and whatever we would write parses back to the same entries.
func FuzzParseLDIF(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.ldif")
	bad, _ := filepath.Glob("testdata/bad/*.ldif")
	for _, p := range append(files, bad...) {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		// A hang would stall the fuzzer silently; crash so the input is saved.
		tm := time.AfterFunc(10*time.Second, func() { panic("FuzzParseLDIF: one input took over 10s") })
		defer tm.Stop()
		d, err := parseLDIF("fuzz.ldif", b)
		if err != nil {
			return
		}
		tg := &target{addr: "target.ldif.f", path: "fuzz.ldif", flavor: config.FlavorOpenLDAP, dir: d}
		for _, e := range d.entries {
			g := &config.Group{Addr: "group.g", BaseAddr: "group.g", DN: e.DN}
			_, _ = readGroup(d, g)
			_, _ = tg.lookup(d, e.DN)
			for _, u := range values(e, "uid") {
				_, _ = tg.lookup(d, u)
			}
		}
		// Re-encode every record, by splicing and by encoding the whole
		// file: either refuses with an error or yields the same entries.
		all, spliced := d.clone(), d.clone()
		all.raw = nil
		for i := range spliced.entries {
			spliced.dirty[i] = true
		}
		for _, c := range []*directory{all, spliced} {
			out, err := c.marshal()
			if err != nil {
				continue // refused to write: allowed, as long as it is an error
			}
			back, err := parseLDIF("fuzz.ldif", out)
			if err != nil {
				t.Fatalf("encoded file does not parse: %v\n%s", err, out)
			}
			if err := sameEntries(d.entries, back.entries); err != nil {
				t.Fatalf("round trip changed %v", err)
			}
		}
	})
}
