package config

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
)

// LDAPTarget: an OpenLDAP or Active Directory server (target "ldap").
type LDAPTarget struct {
	URL                string // ldaps://host[:port] or ldap://host[:port]
	BindDN             string // a DN, or (AD) a UPN
	Password           Secret
	BaseDN             string
	Flavor             string // "openldap" or "active_directory"
	CAFile             string // PEM bundle to trust instead of the system roots
	StartTLS           *bool  // ldap:// only; default true (nil for ldaps://)
	InsecurePlaintext  bool   // allow plain ldap:// without TLS
	InsecureSkipVerify bool   // never the default; for labs only
	Timeout            time.Duration
	UserBase           string // where principals are looked up (default BaseDN)
	UserFilter         string // filter template with one %s for the escaped principal
	PageSize           int
	MaxConcurrency     int
	// TTLLinks (Active Directory only): write each grant's member link
	// with a time-to-live (Windows Server 2016 Privileged Access
	// Management), so the domain controller removes it at window end +
	// LDAPTTLGrace even when jitform does not run.
	TTLLinks bool
}

// LDAPTTLGrace is added to a grant's window end to make the TTL of its
// member link (ttl_links): the server-side lock opens just after jitform's
// own removal is due, never before.
const LDAPTTLGrace = 30 * time.Second

// UseStartTLS reports whether the connection upgrades with StartTLS.
func (t *LDAPTarget) UseStartTLS() bool { return t.StartTLS != nil && *t.StartTLS }

// Defaults of target "ldap", documented in docs/language.md.
const (
	DefaultLDAPTimeout        = 30 * time.Second
	DefaultLDAPPageSize       = 500
	DefaultLDAPMaxConcurrency = 4
	DefaultOpenLDAPUserFilter = "(uid=%s)"
	DefaultADUserFilter       = "(sAMAccountName=%s)"
)

// ldapHCL is target "ldap" as written.
type ldapHCL struct {
	URL                string         `hcl:"url"`
	BindDN             string         `hcl:"bind_dn,optional"`
	Password           hcl.Expression `hcl:"password,optional"`
	BaseDN             string         `hcl:"base_dn"`
	Flavor             string         `hcl:"flavor,optional"`
	CAFile             string         `hcl:"ca_file,optional"`
	StartTLS           *bool          `hcl:"start_tls,optional"`
	InsecurePlaintext  bool           `hcl:"insecure_plaintext,optional"`
	InsecureSkipVerify bool           `hcl:"insecure_skip_verify,optional"`
	Timeout            string         `hcl:"timeout,optional"`
	UserBase           string         `hcl:"user_base,optional"`
	UserFilter         string         `hcl:"user_filter,optional"`
	PageSize           *int           `hcl:"page_size,optional"`
	MaxConcurrency     *int           `hcl:"max_concurrency,optional"`
	TTLLinks           bool           `hcl:"ttl_links,optional"`
}

func decodeLDAPTarget(body hcl.Body, ctx *hcl.EvalContext, at blockAttrs) (decodedTarget, hcl.Diagnostics) {
	var raw ldapHCL
	diags := gohcl.DecodeBody(body, ctx, &raw)
	if diags.HasErrors() {
		return decodedTarget{}, diags
	}
	t, more := raw.convert(at)
	return decodedTarget{LDAP: t}, append(diags, more...)
}

// convert checks the settings and fills in defaults.
func (r *ldapHCL) convert(at blockAttrs) (*LDAPTarget, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	add := func(d *hcl.Diagnostic) {
		if d != nil {
			diags = append(diags, d)
		}
	}
	t := &LDAPTarget{
		URL:                r.URL,
		BindDN:             r.BindDN,
		BaseDN:             r.BaseDN,
		CAFile:             r.CAFile,
		StartTLS:           r.StartTLS,
		InsecurePlaintext:  r.InsecurePlaintext,
		InsecureSkipVerify: r.InsecureSkipVerify,
		UserBase:           r.UserBase,
		UserFilter:         r.UserFilter,
		PageSize:           DefaultLDAPPageSize,
		MaxConcurrency:     DefaultLDAPMaxConcurrency,
		TTLLinks:           r.TTLLinks,
	}
	if pw, more, ok := at.decodeSecret("password", r.Password); ok {
		t.Password = pw
		if !t.Password.IsSet() {
			// Never echo the value: only say that it is empty.
			add(at.errAt("password", "Empty password", "password is empty; set it, or remove it together with bind_dn for an anonymous bind."))
		}
	} else {
		diags = append(diags, more...)
	}
	if t.BindDN != "" && !at.has("password") {
		add(at.errAt("bind_dn", "Missing password", "bind_dn is set but password is not; use password = env(\"...\")."))
	}

	var flavorDiag *hcl.Diagnostic
	t.Flavor, flavorDiag = checkFlavor(r.Flavor, at)
	add(flavorDiag)
	if r.TTLLinks && flavorDiag == nil && t.Flavor != FlavorActiveDirectory {
		add(at.errAt("ttl_links", "ttl_links requires flavor = \"active_directory\"",
			fmt.Sprintf("ttl_links writes member links with a time-to-live, a feature of Active Directory (Windows Server 2016 forest functional level with the Privileged Access Management optional feature); this target's flavor is %q. Remove ttl_links or set flavor = \"active_directory\".", t.Flavor)))
	}

	u, err := url.Parse(r.URL)
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "ldap" && u.Scheme != "ldaps"):
		add(at.errAt("url", "Invalid LDAP URL",
			"url must be ldaps://host[:port] or ldap://host[:port] (with StartTLS), for example \"ldaps://dc01.corp.example\"."))
	case u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.User != nil:
		add(at.errAt("url", "Invalid LDAP URL", "url must hold only a scheme, a host and a port; put the base DN in base_dn."))
	case u.Scheme == "ldaps":
		if r.StartTLS != nil && *r.StartTLS {
			add(at.errAt("start_tls", "StartTLS on an ldaps:// URL", "start_tls applies only to ldap:// URLs; ldaps:// is already TLS."))
		}
		t.StartTLS = nil
	default: // ldap://
		if t.StartTLS == nil {
			yes := true
			t.StartTLS = &yes
		}
		if !*t.StartTLS && !t.InsecurePlaintext {
			add(at.errAt("start_tls", "plain ldap:// without start_tls requires insecure_plaintext=true",
				"plain ldap:// without start_tls requires insecure_plaintext=true: the password and every membership would cross the network unencrypted. Use ldaps:// or start_tls = true, or, for a lab, set insecure_plaintext = true."))
		}
	}

	if _, err := ldap.ParseDN(r.BaseDN); err != nil || strings.TrimSpace(r.BaseDN) == "" {
		add(at.errAt("base_dn", "Invalid base_dn", fmt.Sprintf("base_dn %q is not a distinguished name.", r.BaseDN)))
	}
	if t.UserBase == "" {
		t.UserBase = t.BaseDN
	} else if _, err := ldap.ParseDN(t.UserBase); err != nil {
		add(at.errAt("user_base", "Invalid user_base", fmt.Sprintf("user_base %q is not a distinguished name.", t.UserBase)))
	}
	if t.UserFilter == "" {
		t.UserFilter = DefaultOpenLDAPUserFilter
		if t.Flavor == FlavorActiveDirectory {
			t.UserFilter = DefaultADUserFilter
		}
	} else if strings.Count(t.UserFilter, "%s") != 1 || strings.Count(t.UserFilter, "%") != 1 {
		add(at.errAt("user_filter", "Invalid user_filter",
			"user_filter must contain exactly one %s (the escaped principal) and no other %, for example \"(uid=%s)\"."))
	}

	var d *hcl.Diagnostic
	t.Timeout, d = parseTimeout(r.Timeout, DefaultLDAPTimeout, at)
	add(d)
	if r.PageSize != nil {
		if *r.PageSize < 1 || *r.PageSize > 100000 {
			add(at.errAt("page_size", "Invalid page_size", "page_size must be between 1 and 100000 (Active Directory serves at most 1000 per page)."))
		}
		t.PageSize = *r.PageSize
	}
	if r.MaxConcurrency != nil {
		if *r.MaxConcurrency < 1 || *r.MaxConcurrency > 64 {
			add(at.errAt("max_concurrency", "Invalid max_concurrency", "max_concurrency must be between 1 and 64."))
		}
		t.MaxConcurrency = *r.MaxConcurrency
	}
	return t, diags
}
