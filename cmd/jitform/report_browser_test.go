package main

import (
	"context"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// chromiumPath finds Debian's chromium. Without it the browser test skips,
// unless JITFORM_REQUIRE_SERVERS=1 (scripts/test.sh installs it), when it
// fails.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("JITFORM_REQUIRE_SERVERS") == "1" {
		t.Fatal("chromium is not installed and JITFORM_REQUIRE_SERVERS=1: install Debian's chromium (scripts/test.sh does)")
	}
	t.Skip("chromium is not installed (apt-get install -y chromium); skipping the real-browser test")
	return ""
}

// consoleRE matches what chromium logs for console messages and uncaught
// errors with --enable-logging=stderr: the report has no scripts, so any
// console output at all (a CSP violation, an error) is a failure.
var consoleRE = regexp.MustCompile(`(?m)^.*(:CONSOLE[:(]|Uncaught ).*$`)

// screenshot renders page headless, returning the PNG's path and the
// console lines chromium logged.
func screenshot(t *testing.T, chromium, page string) (string, []string) {
	t.Helper()
	dir := t.TempDir()
	out := filepath.Join(dir, "shot.png")
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+filepath.Join(dir, "profile"), "--enable-logging=stderr", "--v=0",
		"--screenshot="+out, "--window-size=1200,900", "file://"+page)
	cmd.WaitDelay = 5 * time.Second
	logs, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, logs)
	}
	return out, consoleRE.FindAllString(string(logs), -1)
}

// pixelStats returns the luminance variance of the PNG and how many pixels
// are the timeline's late-removal red and grant blue.
func pixelStats(t *testing.T, file string) (variance float64, red, blue int) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("decode the screenshot: %v", err)
	}
	b := img.Bounds()
	var sum, sumSq float64
	n := 0
	near := func(v uint32, want uint8) bool { d := int(v>>8) - int(want); return d > -12 && d < 12 }
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			l := 0.299*float64(r>>8) + 0.587*float64(g>>8) + 0.114*float64(bl>>8)
			sum += l
			sumSq += l * l
			n++
			if near(r, 0xd6) && near(g, 0x27) && near(bl, 0x28) {
				red++
			}
			if near(r, 0x2f) && near(g, 0x6d) && near(bl, 0xb5) {
				blue++
			}
		}
	}
	mean := sum / float64(n)
	return sumSq/float64(n) - mean*mean, red, blue
}

// TestReportHTMLInChromium renders the fixture's HTML report in a real
// browser: the screenshot is not blank and shows the timeline's colours,
// and the page logs nothing to the console (no errors, no blocked fetches).
// A control page proves both checks can fail.
func TestReportHTMLInChromium(t *testing.T) {
	chromium := chromiumPath(t)
	dir := t.TempDir()
	copyTree(t, reportRepo, dir)
	page := filepath.Join(t.TempDir(), "report.html")
	if _, stderr, code := runReport(t, dir, append(append([]string{}, reportArgs...), "--html", page)...); code != 0 {
		t.Fatalf("report --html: exit %d: %s", code, stderr)
	}

	shot, console := screenshot(t, chromium, page)
	if len(console) > 0 {
		t.Errorf("the report logged to the browser console:\n%s", strings.Join(console, "\n"))
	}
	variance, red, blue := pixelStats(t, shot)
	if variance < 100 {
		t.Errorf("the screenshot is blank or nearly (luminance variance %.1f)", variance)
	}
	if red < 200 || blue < 50 {
		t.Errorf("the timeline is not visible: %d late-red and %d grant-blue pixels", red, blue)
	}
	t.Logf("report: luminance variance %.0f, %d red and %d blue pixels", variance, red, blue)
	if out := os.Getenv("JITFORM_REPORT_SCREENSHOT"); out != "" {
		b, err := os.ReadFile(shot)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(out, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// Control: a blank page that throws must fail both checks.
	control := filepath.Join(t.TempDir(), "control.html")
	if err := os.WriteFile(control, []byte(`<!DOCTYPE html><html><body><script>undefinedFunction()</script></body></html>`), 0o644); err != nil {
		t.Fatal(err)
	}
	shot, console = screenshot(t, chromium, control)
	if len(console) == 0 || !strings.Contains(strings.Join(console, "\n"), "undefinedFunction") {
		t.Errorf("the console check missed an uncaught error: %q", console)
	}
	if v, _, _ := pixelStats(t, shot); v >= 100 {
		t.Errorf("the blank-page check passed a blank page (variance %.1f)", v)
	}
}
