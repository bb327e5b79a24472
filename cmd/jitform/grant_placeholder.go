package main

import "context"

// PLACEHOLDER owned by the grant-workflow engineer: delete this file when
// cmd/jitform/grant.go defines cmdGrant with this signature.
func cmdGrant(ctx context.Context, a *app, args []string) int {
	return a.errorf("`jitform grant` is not available in this build yet")
}
