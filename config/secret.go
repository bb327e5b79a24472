package config

// Secret holds a sensitive value (a password). It never prints, marshals or
// logs its contents; only Reveal gives them, and only providers call it.
type Secret struct{ v string }

// NewSecret wraps a sensitive value.
func NewSecret(v string) Secret { return Secret{v: v} }

// Reveal returns the secret value, for handing to a server.
func (s Secret) Reveal() string { return s.v }

// IsSet reports whether a value was given.
func (s Secret) IsSet() bool { return s.v != "" }

const redacted = "(sensitive)"

func (s Secret) String() string               { return redacted }
func (s Secret) GoString() string             { return redacted }
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }
