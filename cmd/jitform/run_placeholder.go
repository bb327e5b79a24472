package main

import "context"

// PLACEHOLDER owned by the `jitform run` engineer: delete this file when
// cmd/jitform/run.go defines cmdRun with this signature.
func cmdRun(ctx context.Context, a *app, args []string) int {
	return a.errorf("`jitform run` is not available in this build yet")
}
