package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
)

const versionUsage = `
Usage: jitform version

Prints the jitform version and the Go version it was built with.
`

func cmdVersion(ctx context.Context, a *app, args []string) int {
	fs := a.flagSet("version", versionUsage)
	if code, done := a.parse(fs, args); done {
		return code
	}
	v := version
	if v == "dev" {
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
	}
	fmt.Fprintf(a.stdout, "jitform %s (%s)\n", v, runtime.Version())
	return exitOK
}
