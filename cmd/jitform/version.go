package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
)

const versionUsage = `
Usage: jitform version [--json]

Prints the jitform version, the commit and date it was built from, and the Go
version and platform. Release builds (scripts/release.sh) stamp version,
commit and date; a build from a checkout reports the commit Go recorded.

  --json   print {"version","commit","date","go","platform"} (stable)
`

// Set at build time by scripts/release.sh:
// -ldflags "-X main.version=v1.2.3 -X main.commit=abc123 -X main.date=2026-12-01T00:00:00Z".
var (
	commit = ""
	date   = ""
)

// buildInfo is what `version --json` prints.
type buildInfo struct {
	Version  string `json:"version"`
	Commit   string `json:"commit"`
	Date     string `json:"date"`
	Go       string `json:"go"`
	Platform string `json:"platform"`
}

// currentBuild fills what the linker did not stamp from what the Go
// toolchain recorded (module version, vcs.revision, vcs.time).
func currentBuild() buildInfo {
	b := buildInfo{Version: version, Commit: commit, Date: date, Go: runtime.Version(),
		Platform: runtime.GOOS + "/" + runtime.GOARCH}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	if b.Version == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		b.Version = bi.Main.Version
	}
	modified := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			if b.Commit == "" {
				b.Commit = s.Value
			}
		case "vcs.time":
			if b.Date == "" {
				b.Date = s.Value
			}
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if modified && commit == "" && b.Commit != "" {
		b.Commit += "-dirty"
	}
	return b
}

func cmdVersion(ctx context.Context, a *app, args []string) int {
	fs := a.flagSet("version", versionUsage)
	asJSON := fs.Bool("json", false, "print the build as JSON")
	if code, done := a.parse(fs, args); done {
		return code
	}
	if fs.NArg() > 0 {
		return a.errorf("version takes no arguments (got %q)", fs.Args())
	}
	b := currentBuild()
	if *asJSON {
		return a.writeJSON(b)
	}
	fmt.Fprintf(a.stdout, "jitform %s (%s, %s)\n", b.Version, b.Go, b.Platform)
	if b.Commit != "" {
		fmt.Fprintf(a.stdout, "commit %s", b.Commit)
		if b.Date != "" {
			fmt.Fprintf(a.stdout, ", built %s", b.Date)
		}
		fmt.Fprintln(a.stdout)
	}
	return exitOK
}
