package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// Secret holds a sensitive value (a password). It never prints, marshals or
// logs its contents; only Value (or Reveal) gives them, and only providers
// call it, when they open a target.
//
// A secret written with env() is kept as its unevaluated expression and
// evaluated by Value, so loading a configuration reads no environment
// variable: validate, fmt, grant, show and ledger need no password.
type Secret struct {
	v string
	d *deferredSecret // non-nil: evaluated by Value
}

// deferredSecret is a secret expression with what it needs to evaluate.
type deferredSecret struct {
	expr hcl.Expression
	dir  string
	opts LoadOptions
}

// NewSecret wraps a sensitive value.
func NewSecret(v string) Secret { return Secret{v: v} }

// Value returns the secret, reading its environment variables now. The
// error names the variable (unset, empty, not UTF-8) and never a value.
func (s Secret) Value() (string, error) {
	if s.d == nil {
		return s.v, nil
	}
	var names, values []string
	var envErr error
	read := func(name, value string, err error) {
		names = append(names, name)
		if value != "" {
			values = append(values, value)
		}
		if err != nil && envErr == nil {
			envErr = err
		}
	}
	ctx := evalContext(s.d.dir, s.d.opts, envFunc(s.d.opts.LookupEnv, read))
	v, diags := s.d.expr.Value(ctx)
	if envErr != nil {
		return "", envErr
	}
	if diags.HasErrors() {
		// Another function failed (file(), timeadd()): its message may
		// quote an argument, which may be a value read above.
		msg := diags[0].Summary
		if diags[0].Detail != "" {
			msg = diags[0].Detail
		}
		for _, val := range values {
			msg = strings.ReplaceAll(msg, val, redacted)
		}
		return "", errors.New(strings.TrimSuffix(msg, "."))
	}
	v, _ = v.UnmarkDeep()
	sv, err := convert.Convert(v, cty.String)
	if err != nil || sv.IsNull() || !sv.IsKnown() {
		return "", errors.New("the value is not a string")
	}
	if sv.AsString() == "" {
		if len(names) > 0 {
			return "", fmt.Errorf("environment variable %s is empty", strings.Join(slices.Compact(names), ", "))
		}
		return "", errors.New("the value is empty")
	}
	return sv.AsString(), nil
}

// Reveal returns the secret value, for handing to a server; "" when Value
// fails. Providers use Value, which says why.
func (s Secret) Reveal() string {
	v, _ := s.Value()
	return v
}

// IsSet reports whether a value was given (a deferred one counts as given;
// Value reports it if it turns out empty).
func (s Secret) IsSet() bool { return s.d != nil || s.v != "" }

const redacted = "(sensitive)"

func (s Secret) String() string               { return redacted }
func (s Secret) GoString() string             { return redacted }
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }
