package config

import "time"

// LDAPTarget: an OpenLDAP or Active Directory server (target "ldap").
type LDAPTarget struct {
	URL                string // ldaps://host[:port] or ldap://host[:port]
	BindDN             string // a DN, or (AD) a UPN
	Password           Secret
	BaseDN             string
	Flavor             string // "openldap" or "active_directory"
	CAFile             string // PEM bundle to trust instead of the system roots
	StartTLS           *bool  // ldap:// only; default true
	InsecurePlaintext  bool   // allow plain ldap:// without TLS
	InsecureSkipVerify bool   // never the default; for labs only
	Timeout            time.Duration
	UserBase           string // where principals are looked up (default BaseDN)
	UserFilter         string // filter template with one %s for the escaped principal
	PageSize           int
	MaxConcurrency     int
}

// LDIFTarget: an LDIF file used as an offline directory (target "ldif").
type LDIFTarget struct {
	Path   string // relative to the config directory
	Flavor string // "openldap" or "active_directory"
}

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
}
