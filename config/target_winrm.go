package config

import (
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
)

// WinRMTarget: a Windows host, or several (target "winrm").
type WinRMTarget struct {
	Address           string // this instance's host
	Port              int    // default 5986 (https) or 5985
	HTTPS             bool   // default true
	Insecure          bool   // HTTPS without certificate verification (labs only)
	InsecurePlaintext bool   // allow plain HTTP
	CAFile            string
	Auth              string // "basic" or "ntlm"
	User              string
	Password          Secret
	Timeout           time.Duration
	// AllowDomainController: manage groups on a host that is a domain
	// controller, where every group (Administrators among them) is the
	// domain's. Off by default: such a target's groups are refused.
	AllowDomainController bool
}

// WinRM authentication schemes.
const (
	WinRMAuthBasic = "basic"
	WinRMAuthNTLM  = "ntlm"
)

// Defaults of target "winrm", documented in docs/language.md.
const (
	DefaultWinRMTimeout   = 60 * time.Second
	DefaultWinRMHTTPSPort = 5986
	DefaultWinRMHTTPPort  = 5985
)

// winrmHCL is target "winrm" as written.
type winrmHCL struct {
	Address           string         `hcl:"address,optional"`
	Hosts             []string       `hcl:"hosts,optional"`
	Port              *int           `hcl:"port,optional"`
	HTTPS             *bool          `hcl:"https,optional"`
	Insecure          bool           `hcl:"insecure,optional"`
	InsecurePlaintext bool           `hcl:"insecure_plaintext,optional"`
	CAFile            string         `hcl:"ca_file,optional"`
	Auth              string         `hcl:"auth,optional"`
	User              string         `hcl:"user"`
	Password          hcl.Expression `hcl:"password,optional"`
	Timeout           string         `hcl:"timeout,optional"`
	AllowDC           bool           `hcl:"allow_domain_controller,optional"`
}

func decodeWinRMTarget(body hcl.Body, ctx *hcl.EvalContext, at blockAttrs) (decodedTarget, hcl.Diagnostics) {
	var raw winrmHCL
	diags := gohcl.DecodeBody(body, ctx, &raw)
	if diags.HasErrors() {
		return decodedTarget{}, diags
	}
	t, hosts, more := raw.convert(at)
	d := decodedTarget{WinRM: t, Hosts: hosts}
	if hosts != nil {
		d.HostsRange = *at.rangeOf("hosts")
	}
	return d, append(diags, more...)
}

// convert checks the settings and fills in defaults. For a multi-host block
// it returns the hosts; the loader makes one instance per host.
func (r *winrmHCL) convert(at blockAttrs) (*WinRMTarget, []string, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	add := func(d *hcl.Diagnostic) {
		if d != nil {
			diags = append(diags, d)
		}
	}
	t := &WinRMTarget{
		Address:               r.Address,
		HTTPS:                 r.HTTPS == nil || *r.HTTPS,
		Insecure:              r.Insecure,
		InsecurePlaintext:     r.InsecurePlaintext,
		CAFile:                r.CAFile,
		Auth:                  r.Auth,
		User:                  r.User,
		AllowDomainController: r.AllowDC,
	}

	var hosts []string
	switch {
	case at.has("address") && at.has("hosts"):
		add(at.errAt("hosts", "Both address and hosts", "A winrm target has either address (one host) or hosts (several), not both."))
	case at.has("hosts"):
		if len(r.Hosts) == 0 {
			add(at.errAt("hosts", "Empty hosts", "hosts must list at least one host."))
		}
		seen := map[string]bool{}
		hosts = []string{}
		for _, h := range r.Hosts {
			if msg := checkHost(h); msg != "" {
				add(at.errAt("hosts", "Invalid host", msg))
				continue
			}
			key := strings.ToLower(h)
			if seen[key] {
				add(at.errAt("hosts", "Duplicate host", fmt.Sprintf("%q is listed twice in hosts.", h)))
				continue
			}
			seen[key] = true
			hosts = append(hosts, h)
		}
	case at.has("address"):
		if msg := checkHost(r.Address); msg != "" {
			add(at.errAt("address", "Invalid address", msg))
		}
	default:
		add(at.errAt("address", "Missing address", "A winrm target needs address = \"host\" or hosts = [\"host1\", \"host2\"]."))
	}

	if r.Port != nil {
		if *r.Port < 1 || *r.Port > 65535 {
			add(at.errAt("port", "Invalid port", "port must be between 1 and 65535."))
		}
		t.Port = *r.Port
	} else if t.HTTPS {
		t.Port = DefaultWinRMHTTPSPort
	} else {
		t.Port = DefaultWinRMHTTPPort
	}
	if !t.HTTPS && !t.InsecurePlaintext {
		add(at.errAt("https", "plain HTTP without https requires insecure_plaintext=true",
			"plain HTTP without https requires insecure_plaintext=true: credentials and commands would cross the network unprotected. Use https = true (the default), or, for a lab, set insecure_plaintext = true."))
	}

	switch t.Auth {
	case "":
		t.Auth = WinRMAuthNTLM
	case WinRMAuthBasic, WinRMAuthNTLM:
	default:
		add(at.errAt("auth", "Unknown auth", "auth must be \"ntlm\" or \"basic\""+suggest(t.Auth, []string{WinRMAuthNTLM, WinRMAuthBasic})+"."))
	}
	if strings.TrimSpace(t.User) == "" {
		add(at.errAt("user", "Empty user", "user must name the account jitform connects as, for example \"CORP\\\\svc-jitform\"."))
	}
	if pw, more, ok := at.decodeSecret("password", r.Password); ok {
		t.Password = pw
		if !t.Password.IsSet() {
			// Never echo the value: only say that it is empty.
			add(at.errAt("password", "Empty password", "password is empty; set it with password = env(\"...\")."))
		}
	} else if !at.has("password") {
		add(at.errAt("password", "Missing required argument", "The argument \"password\" is required: the password of user, written password = env(\"...\")."))
	} else {
		diags = append(diags, more...)
	}
	var d *hcl.Diagnostic
	t.Timeout, d = parseTimeout(r.Timeout, DefaultWinRMTimeout, at)
	add(d)
	return t, hosts, diags
}

// checkHost returns why h is not a host name or address, or "".
func checkHost(h string) string {
	switch {
	case h == "":
		return "a host must not be empty."
	case strings.Contains(h, "://"):
		return fmt.Sprintf("%q: write the host only (no scheme); use https and port for the rest.", h)
	case strings.ContainsAny(h, " \t/\\\"'[]"):
		return fmt.Sprintf("%q is not a host name or address.", h)
	}
	return ""
}
