package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
)

// evalContext carries only the functions: references (target.*, group.*,
// policy.*) are read as traversals and resolved by the loader, so no value
// of one block, and no secret, is ever reachable from another. env is the
// env() of the occasion: at load time it reads nothing (deferredEnvFunc),
// when a target is opened it reads the environment (envFunc).
func evalContext(dir string, opts LoadOptions, env function.Function) *hcl.EvalContext {
	planTime := opts.PlanTime
	if planTime.IsZero() {
		planTime = time.Now()
	}
	return &hcl.EvalContext{Functions: map[string]function.Function{
		"env":           env,
		"file":          fileFunc(dir),
		"plantimestamp": planTimestampFunc(planTime.UTC().Truncate(time.Second)),
		"timeadd":       timeAddFunc(),
	}}
}

// deferredEnvFunc is env() while loading: it reads no variable and returns
// an unknown value marked sensitive. Connection secrets are read only when
// a target is opened (Secret.Value), so commands that open no target need
// none, and no environment value can reach a diagnostic of the load: a
// function given one gets an unknown and returns an unknown.
func deferredEnvFunc() function.Function {
	return function.New(&function.Spec{
		Description: "The value of an environment variable, read when a target is opened.",
		Params:      []function.Parameter{{Name: "name", Type: cty.String}},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			if args[0].AsString() == "" {
				return cty.NilVal, function.NewArgErrorf(0, "the variable name is empty")
			}
			return cty.UnknownVal(cty.String).Mark(sensitive), nil
		},
	})
}

// envFunc reads an environment variable when a secret is revealed; read
// gets each variable's name and value (or the error), so that the caller
// can name the variable and scrub the value. The value is never part of
// any message.
func envFunc(lookup func(string) (string, bool), read func(name, value string, err error)) function.Function {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	return function.New(&function.Spec{
		Description: "The value of an environment variable; an error when it is not set.",
		Params:      []function.Parameter{{Name: "name", Type: cty.String}},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			name := args[0].AsString()
			v, ok := lookup(name)
			var err error
			switch {
			case !ok:
				err = fmt.Errorf("environment variable %s is not set", name)
			case !utf8.ValidString(v):
				err = fmt.Errorf("environment variable %s is not valid UTF-8", name)
			}
			read(name, v, err)
			if err != nil {
				return cty.NilVal, err
			}
			return cty.StringVal(v).Mark(sensitive), nil
		},
	})
}

// MaxFileSize is the largest file file() reads (1 MiB): it is meant for
// keys and small lists, and a bound keeps a hostile pull request from
// exhausting memory.
const MaxFileSize = 1 << 20

// fileFunc reads a regular file inside the policy repository dir.
func fileFunc(dir string) function.Function {
	return function.New(&function.Spec{
		Description: "The contents of a regular file inside the policy repository, by a relative path.",
		Params:      []function.Parameter{{Name: "path", Type: cty.String}},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			s, err := readRepoFile(dir, args[0].AsString())
			if err != nil {
				return cty.NilVal, err
			}
			return cty.StringVal(s), nil
		},
	})
}

// readRepoFile reads p, a path relative to dir, when it names a regular file
// of at most MaxFileSize bytes that is inside dir after resolving every
// symlink. What a pull request writes into a file() call is untrusted: an
// absolute path, "..", a symlink out, a device, a fifo or a proc file could
// put the CI's secrets or an endless stream into plans and logs. Errors
// name the path as written, never the content.
func readRepoFile(dir, p string) (string, error) {
	if dir == "" {
		dir = "."
	}
	switch {
	case p == "":
		return "", errors.New("the path is empty; give a file relative to the policy repository")
	case filepath.IsAbs(p) || strings.HasPrefix(p, "/") || strings.HasPrefix(p, `\`):
		return "", fmt.Errorf("%q is an absolute path; file() reads only files inside the policy repository, by a relative path", p)
	case !filepath.IsLocal(p):
		return "", fmt.Errorf("%q leaves the policy repository; file() reads only files inside it", p)
	}
	root, err := filepath.EvalSymlinks(dir)
	if err == nil {
		root, err = filepath.Abs(root)
	}
	if err != nil {
		return "", fmt.Errorf("resolve the policy repository: %w", unwrapPathErr(err))
	}
	real, err := filepath.EvalSymlinks(filepath.Join(dir, p))
	if err == nil {
		real, err = filepath.Abs(real)
	}
	if err != nil {
		return "", fmt.Errorf("read %s: %w", p, unwrapPathErr(err))
	}
	if rel, err := filepath.Rel(root, real); err != nil || !filepath.IsLocal(rel) {
		return "", fmt.Errorf("%q resolves (through a symlink) to a file outside the policy repository; file() reads only files inside it", p)
	}
	fi, err := os.Lstat(real)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", p, unwrapPathErr(err))
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a regular file (%s); file() reads only regular files", p, fileKind(fi.Mode()))
	}
	if fi.Size() > MaxFileSize {
		return "", fmt.Errorf("%s is %d bytes; file() reads at most %d bytes (1 MiB)", p, fi.Size(), MaxFileSize)
	}
	f, err := openNoFollow(real)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", p, unwrapPathErr(err))
	}
	defer f.Close()
	// The file may have been swapped between the checks and the open.
	if ofi, err := f.Stat(); err != nil || !ofi.Mode().IsRegular() || !os.SameFile(fi, ofi) {
		return "", fmt.Errorf("%s changed while it was being read; try again", p)
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return "", fmt.Errorf("read %s: %w", p, unwrapPathErr(err))
	}
	if len(b) > MaxFileSize {
		return "", fmt.Errorf("%s is larger than %d bytes (1 MiB), the most file() reads", p, MaxFileSize)
	}
	if !utf8.Valid(b) {
		return "", fmt.Errorf("%s is not valid UTF-8 text", p)
	}
	return string(b), nil
}

// fileKind names a non-regular file's type for an error.
func fileKind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&os.ModeNamedPipe != 0:
		return "a fifo"
	case m&os.ModeSocket != 0:
		return "a socket"
	case m&os.ModeCharDevice != 0:
		return "a character device"
	case m&os.ModeDevice != 0:
		return "a device"
	case m&os.ModeSymlink != 0:
		return "a symlink"
	}
	return "not a plain file"
}

// unwrapPathErr drops the *PathError wrapper whose path we print already.
func unwrapPathErr(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

func planTimestampFunc(t time.Time) function.Function {
	return function.New(&function.Spec{
		Description: "The plan time (RFC 3339, UTC). A grant starting at it moves with every plan: for demos only.",
		Type:        function.StaticReturnType(cty.String),
		Impl: func([]cty.Value, cty.Type) (cty.Value, error) {
			return cty.StringVal(t.Format(time.RFC3339)), nil
		},
	})
}

// timeAddFunc adds a duration (config syntax, may be negative) to an RFC 3339 time.
func timeAddFunc() function.Function {
	return function.New(&function.Spec{
		Description: "Adds a duration such as \"2h\" or \"-1d\" to an RFC 3339 timestamp.",
		Params: []function.Parameter{
			{Name: "timestamp", Type: cty.String},
			{Name: "duration", Type: cty.String},
		},
		Type: function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			ts, err := time.Parse(time.RFC3339, args[0].AsString())
			if err != nil {
				return cty.NilVal, function.NewArgErrorf(0, "%q is not an RFC 3339 timestamp such as 2026-11-23T09:00:00Z", args[0].AsString())
			}
			ds := args[1].AsString()
			neg := strings.HasPrefix(ds, "-")
			d, err := ParseDuration(strings.TrimPrefix(ds, "-"))
			if err != nil {
				return cty.NilVal, function.NewArgError(1, err)
			}
			if neg {
				d = -d
			}
			return cty.StringVal(ts.Add(d).UTC().Format(time.RFC3339)), nil
		},
	})
}
