package config

import (
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// Target kinds, as written in the first label of a target block.
const (
	KindLDAP  = "ldap"
	KindLDIF  = "ldif"
	KindWinRM = "winrm"
)

// Flavors of directory, for target "ldap" and target "ldif".
const (
	FlavorOpenLDAP        = "openldap"
	FlavorActiveDirectory = "active_directory"
)

var flavors = []string{FlavorOpenLDAP, FlavorActiveDirectory}

// Each kind's settings struct, its gohcl-tagged HCL struct and the conversion
// between them live in target_<kind>.go, so a provider engineer adds a
// setting by adding one tagged field and one conversion line there.

// decodedTarget is one target block after decoding: the kind's settings and,
// for a multi-host block, the hosts it expands to (one Target per host).
type decodedTarget struct {
	LDAP  *LDAPTarget
	LDIF  *LDIFTarget
	WinRM *WinRMTarget

	Hosts      []string // nil: a single instance
	HostsRange hcl.Range
}

// targetKinds lists the kinds in the order a suggestion prefers them.
var targetKinds = []string{KindLDAP, KindLDIF, KindWinRM}

// decodeTargetBody decodes a target block's body for its kind. ok is false
// for an unknown kind (the caller reports it at the label).
func decodeTargetBody(kind string, body hcl.Body, ctx *hcl.EvalContext, at blockAttrs) (decodedTarget, hcl.Diagnostics, bool) {
	switch kind {
	case KindLDAP:
		d, diags := decodeLDAPTarget(body, ctx, at)
		return d, diags, true
	case KindLDIF:
		d, diags := decodeLDIFTarget(body, ctx, at)
		return d, diags, true
	case KindWinRM:
		d, diags := decodeWinRMTarget(body, ctx, at)
		return d, diags, true
	}
	return decodedTarget{}, nil, false
}

// blockAttrs lets a conversion function point a diagnostic at the attribute
// it is about, or at the block when the attribute is absent.
type blockAttrs struct {
	decl   hcl.Range
	ranges Ranges // attribute name -> expression range
	// secret decodes a secret attribute (see secretAttrs); set by the loader.
	secret func(name string, expr hcl.Expression) (Secret, hcl.Diagnostics)
}

// Ranges says where a block's attributes were written: "name" for an
// attribute or a nested block (the last of its type), "block.name" for an
// attribute of a nested block (the last that has it). It reads the syntax
// tree when asked rather than copying every range into a map: a
// repository may hold 100,000 grants, and few ranges are ever needed.
type Ranges struct {
	body *hclsyntax.Body // nil: none known
}

// Of returns the range of the named attribute's expression (or of the
// nested block), and whether it was written.
func (r Ranges) Of(name string) (hcl.Range, bool) {
	if r.body == nil {
		return hcl.Range{}, false
	}
	typ, attr, nested := strings.Cut(name, ".")
	for i := len(r.body.Blocks) - 1; i >= 0; i-- {
		nb := r.body.Blocks[i]
		if nb.Type != typ {
			continue
		}
		if !nested {
			return nb.DefRange(), true
		}
		if a, ok := nb.Body.Attributes[attr]; ok {
			return a.Expr.Range(), true
		}
	}
	if nested {
		return hcl.Range{}, false
	}
	if a, ok := r.body.Attributes[name]; ok {
		return a.Expr.Range(), true
	}
	return hcl.Range{}, false
}

// decodeSecret decodes the secret attribute name, written as expr; ok is
// false when it is absent or reported.
func (b blockAttrs) decodeSecret(name string, expr hcl.Expression) (s Secret, diags hcl.Diagnostics, ok bool) {
	if !b.has(name) || expr == nil || b.secret == nil {
		return Secret{}, nil, false
	}
	s, diags = b.secret(name, expr)
	return s, diags, !diags.HasErrors()
}

// has reports whether the attribute was written.
func (b blockAttrs) has(name string) bool {
	_, ok := b.ranges.Of(name)
	return ok
}

// rangeOf returns the attribute's expression range, or the block's.
func (b blockAttrs) rangeOf(name string) *hcl.Range {
	if r, ok := b.ranges.Of(name); ok {
		return &r
	}
	r := b.decl
	return &r
}

// errAt builds an error diagnostic at the named attribute.
func (b blockAttrs) errAt(name, summary, detail string) *hcl.Diagnostic {
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: b.rangeOf(name)}
}

// checkFlavor validates a flavor attribute; "" becomes the default openldap.
func checkFlavor(flavor string, at blockAttrs) (string, *hcl.Diagnostic) {
	switch flavor {
	case "":
		return FlavorOpenLDAP, nil
	case FlavorOpenLDAP, FlavorActiveDirectory:
		return flavor, nil
	}
	return "", at.errAt("flavor", "Unknown directory flavor",
		"flavor must be \"openldap\" or \"active_directory\""+suggest(flavor, flavors)+".")
}

// parseTimeout parses an optional timeout attribute, with a default.
func parseTimeout(s string, def time.Duration, at blockAttrs) (time.Duration, *hcl.Diagnostic) {
	if s == "" {
		return def, nil
	}
	d, err := ParseDuration(s)
	if err != nil {
		return 0, at.errAt("timeout", "Invalid timeout", err.Error())
	}
	if d <= 0 {
		return 0, at.errAt("timeout", "Invalid timeout", "timeout must be longer than zero.")
	}
	return d, nil
}

// TargetAttributes lists the attributes a target of the given kind accepts,
// sorted (nil for an unknown kind): for tools, docs and tests that must
// cover every attribute.
func TargetAttributes(kind string) []string {
	var v any
	switch kind {
	case KindLDAP:
		v = &ldapHCL{}
	case KindLDIF:
		v = &ldifHCL{}
	case KindWinRM:
		v = &winrmHCL{}
	default:
		return nil
	}
	schema, _ := gohcl.ImpliedBodySchema(v)
	out := make([]string, 0, len(schema.Attributes))
	for _, a := range schema.Attributes {
		out = append(out, a.Name)
	}
	sort.Strings(out)
	return out
}

// IsSecretAttribute reports whether an attribute may take a value from
// env(): such values are secret, and only these attributes never print.
func IsSecretAttribute(name string) bool { return secretAttrs[name] }
