package config

import (
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
)

// LDIFTarget: an LDIF file used as an offline directory (target "ldif").
type LDIFTarget struct {
	Path   string // as written: relative to the config directory (Config.Dir)
	Flavor string // "openldap" or "active_directory"
}

// ldifHCL is target "ldif" as written.
type ldifHCL struct {
	Path   string `hcl:"path"`
	Flavor string `hcl:"flavor,optional"`
}

func decodeLDIFTarget(body hcl.Body, ctx *hcl.EvalContext, at blockAttrs) (decodedTarget, hcl.Diagnostics) {
	var raw ldifHCL
	diags := gohcl.DecodeBody(body, ctx, &raw)
	if diags.HasErrors() {
		return decodedTarget{}, diags
	}
	t, more := raw.convert(at)
	return decodedTarget{LDIF: t}, append(diags, more...)
}

func (r *ldifHCL) convert(at blockAttrs) (*LDIFTarget, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	t := &LDIFTarget{Path: r.Path}
	if r.Path == "" {
		diags = append(diags, at.errAt("path", "Empty path", "path must name an LDIF file, relative to the config directory."))
	}
	var d *hcl.Diagnostic
	if t.Flavor, d = checkFlavor(r.Flavor, at); d != nil {
		diags = append(diags, d)
	}
	return t, diags
}
