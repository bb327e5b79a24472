package ldap

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	goldap "github.com/go-ldap/ldap/v3"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/internal/dn"
)

// Active Directory expiring links (ttl_links = true): Windows Server 2016's
// Privileged Access Management feature lets a member link carry a
// time-to-live; the domain controller drops the link when it runs out and
// caps the Kerberos tickets it issues to the shortest remaining TTL. A link
// is written as "<TTL=seconds,DN>"; a search that carries control
// LDAP_SERVER_LINK_TTL returns it as "<TTL=remaining>,DN" (MS-ADTS
// 3.1.1.3.4.1.35). jitform writes each grant's add with TTL = window end -
// now + config.LDAPTTLGrace, so the server-side lock opens just after
// jitform's own removal is due.

// pamFeatureRDN names the optional feature in msDS-EnabledFeature.
const pamFeatureRDN = "cn=privileged access management feature"

// ttlTolerance: a TTL link whose expiry is within this of what its grant
// wants is left alone (the planner asks to rewrite only beyond a minute).
const ttlTolerance = 45 * time.Second

// linkTTLControl is LDAP_SERVER_LINK_TTL without a value. On searches it
// is sent as critical, so a server that does not know it refuses the read
// instead of silently returning links without their TTL.
type linkTTLControl struct{ critical bool }

func (c linkTTLControl) GetControlType() string { return goldap.ControlTypeMicrosoftServerLinkTTL }
func (c linkTTLControl) String() string {
	return fmt.Sprintf("LDAP_SERVER_LINK_TTL (%s) critical=%v", goldap.ControlTypeMicrosoftServerLinkTTL, c.critical)
}
func (c linkTTLControl) Encode() *ber.Packet {
	p := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "Control")
	p.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, goldap.ControlTypeMicrosoftServerLinkTTL, "Control Type"))
	if c.critical {
		p.AppendChild(ber.NewBoolean(ber.ClassUniversal, ber.TypePrimitive, ber.TagBoolean, true, "Criticality"))
	}
	return p
}

// searchControls are the controls every search carries on this target.
func (t *target) searchControls() []goldap.Control {
	if t.cfg.TTLLinks {
		return []goldap.Control{linkTTLControl{critical: true}}
	}
	return nil
}

func (t *target) clock() time.Time {
	if t.now != nil {
		return t.now()
	}
	return time.Now()
}

// ttlRefusal is the one error a target whose server cannot keep expiring
// links gets, at open: before anything is planned or written.
func (t *target) ttlRefusal(why string) error {
	return fmt.Errorf("%s: ttl_links = true, but %s cannot keep member links with a time-to-live: %s. Expiring links need a Windows Server 2016 (or later) forest functional level with the Privileged Access Management optional feature enabled (Enable-ADOptionalFeature 'Privileged Access Management Feature'); Samba does not implement them (it rejects the <TTL=...> member syntax as an invalid DN). Set ttl_links = false to rely on jitform's own removal alone",
		t.addr, t.cfg.URL, why)
}

// checkLinkTTL proves, read-only, that the server keeps expiring links: its
// rootDSE lists LDAP_SERVER_LINK_TTL and the forest has the Privileged
// Access Management feature enabled (msDS-EnabledFeature of CN=Partitions).
func (t *target) checkLinkTTL(ctx context.Context) error {
	root, err := t.baseReadWith(ctx, "", []string{"supportedControl", "configurationNamingContext"}, nil)
	if err != nil {
		return fmt.Errorf("%s: ttl_links: read the rootDSE of %s: %w", t.addr, t.cfg.URL, err)
	}
	if root == nil {
		return t.ttlRefusal("its rootDSE could not be read")
	}
	supported := false
	for _, oid := range root.GetAttributeValues("supportedControl") {
		if oid == goldap.ControlTypeMicrosoftServerLinkTTL {
			supported = true
		}
	}
	if !supported {
		return t.ttlRefusal("its rootDSE does not list control " + goldap.ControlTypeMicrosoftServerLinkTTL + " (LDAP_SERVER_LINK_TTL)")
	}
	confNC := root.GetAttributeValue("configurationNamingContext")
	if confNC == "" {
		return t.ttlRefusal("its rootDSE names no configurationNamingContext")
	}
	parts := "CN=Partitions," + confNC
	pe, err := t.baseReadWith(ctx, parts, []string{"msDS-EnabledFeature"}, nil)
	if err != nil {
		return fmt.Errorf("%s: ttl_links: read msDS-EnabledFeature of %s: %w", t.addr, parts, err)
	}
	if pe != nil {
		for _, f := range pe.GetAttributeValues("msDS-EnabledFeature") {
			if c, err := dn.Canonical(f); err == nil && strings.HasPrefix(c, pamFeatureRDN+",") {
				return nil
			}
		}
	}
	return t.ttlRefusal("the Privileged Access Management optional feature is not enabled in the forest (msDS-EnabledFeature of " + parts + " does not list it)")
}

// splitTTL takes "<TTL=N>,DN" (a link read with the control) apart; a
// plain value comes back as it is with ok false.
func splitTTL(v string) (seconds int64, d string, ok bool) {
	rest, found := strings.CutPrefix(v, "<TTL=")
	if !found {
		return 0, v, false
	}
	num, d, found := strings.Cut(rest, ">,")
	if !found {
		return 0, v, false
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 {
		return 0, v, false
	}
	return n, d, true
}

// ttlValue is the member value that writes DN d as a link expiring at
// until + config.LDAPTTLGrace. The DN is data in its own syntax: the
// server parses it as a DN after the TTL, and the DN came from the
// directory or a resolved principal.
func (t *target) ttlValue(d string, until time.Time) (string, error) {
	left := until.Add(config.LDAPTTLGrace).Sub(t.clock())
	if left <= config.LDAPTTLGrace/2 || !until.After(t.clock()) {
		return "", fmt.Errorf("the grant's window ends %s, already past: not writing a link that would expire at once", until.UTC().Format(time.RFC3339))
	}
	return fmt.Sprintf("<TTL=%d,%s>", int64(math.Ceil(left.Seconds())), d), nil
}

// ttlOff reports whether a link now expiring at current (zero: permanent)
// differs from what the change wants: until + grace, or permanent when
// until is zero.
func ttlOff(current, until time.Time) bool {
	if until.IsZero() || current.IsZero() {
		return until.IsZero() != current.IsZero()
	}
	d := current.Sub(until.Add(config.LDAPTTLGrace))
	return d > ttlTolerance || d < -ttlTolerance
}
