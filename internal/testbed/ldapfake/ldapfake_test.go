package ldapfake

import (
	"slices"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	goldap "github.com/go-ldap/ldap/v3"
)

const (
	bindDN = "CN=svc,DC=example,DC=test"
	pw     = "pw"
	groupD = "CN=Ops,OU=Groups,DC=example,DC=test"
	alice  = "CN=alice,OU=People,DC=example,DC=test"
	bob    = "CN=bob,OU=People,DC=example,DC=test"
)

// critical is LDAP_SERVER_LINK_TTL sent as critical, without a value.
type critical struct{}

func (critical) GetControlType() string { return LinkTTLOID }
func (critical) String() string         { return LinkTTLOID }
func (critical) Encode() *ber.Packet {
	p := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "Control")
	p.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, LinkTTLOID, "type"))
	p.AppendChild(ber.NewBoolean(ber.ClassUniversal, ber.TypePrimitive, ber.TagBoolean, true, "criticality"))
	return p
}

func start(t *testing.T, ttl bool) (*Server, *goldap.Conn) {
	t.Helper()
	s := Start(t, bindDN, pw, 0, Entry{DN: groupD, Attrs: map[string][]string{"objectClass": {"group"}, "member": {bob}}})
	if ttl {
		s.EnableLinkTTL("DC=example,DC=test")
	}
	c, err := goldap.DialURL(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Bind(bindDN, pw); err != nil {
		t.Fatal(err)
	}
	return s, c
}

func members(t *testing.T, c *goldap.Conn, withControl bool) []string {
	t.Helper()
	var ctls []goldap.Control
	if withControl {
		ctls = []goldap.Control{critical{}}
	}
	res, err := c.Search(goldap.NewSearchRequest(groupD, goldap.ScopeBaseObject, goldap.NeverDerefAliases, 0, 0, false, "(objectClass=*)", []string{"member"}, ctls))
	if err != nil {
		t.Fatal(err)
	}
	v := res.Entries[0].GetAttributeValues("member")
	slices.Sort(v)
	return v
}

func modify(c *goldap.Conn, add, del []string) error {
	r := goldap.NewModifyRequest(groupD, []goldap.Control{&goldap.ControlMicrosoftServerLinkTTL{}})
	if len(del) > 0 {
		r.Delete("member", del)
	}
	if len(add) > 0 {
		r.Add("member", add)
	}
	return c.Modify(r)
}

// Expiring links as MS-ADTS describes LDAP_SERVER_LINK_TTL: a link written
// as <TTL=s,DN> expires by the server's clock; its remaining TTL is read
// back only by a search that carries the control; an expired link is gone.
func TestLinkTTLExpiryAndReadBack(t *testing.T) {
	s, c := start(t, true)
	if err := modify(c, []string{"<TTL=60," + alice + ">"}, nil); err != nil {
		t.Fatalf("add with TTL: %v", err)
	}
	if got, want := members(t, c, false), []string{alice, bob}; !slices.Equal(got, want) {
		t.Errorf("without the control = %v, want plain DNs %v", got, want)
	}
	if got, want := members(t, c, true), []string{"<TTL=60>," + alice, bob}; !slices.Equal(got, want) {
		t.Errorf("with the control = %v, want %v", got, want)
	}
	s.Advance(45 * time.Second)
	if got, want := members(t, c, true), []string{"<TTL=15>," + alice, bob}; !slices.Equal(got, want) {
		t.Errorf("45 s later = %v, want %v", got, want)
	}
	s.Advance(15 * time.Second)
	if got, want := members(t, c, true), []string{bob}; !slices.Equal(got, want) {
		t.Errorf("at expiry = %v, want alice gone: %v", got, want)
	}
	if got, _ := s.Values(groupD, "member"); !slices.Equal(got, []string{bob}) {
		t.Errorf("stored members after expiry = %v", got)
	}

	// A TTL cannot be put on an existing link: 68, as on Windows. Remove
	// and re-add in one Modify works, atomically.
	err := modify(c, []string{"<TTL=600," + bob + ">"}, nil)
	if !goldap.IsErrorWithCode(err, 68) {
		t.Errorf("TTL add over a permanent link = %v, want 68", err)
	}
	if err := modify(c, []string{"<TTL=600," + bob + ">"}, []string{bob}); err != nil {
		t.Fatalf("remove and re-add with a TTL: %v", err)
	}
	if got, want := members(t, c, true), []string{"<TTL=600>," + bob}; !slices.Equal(got, want) {
		t.Errorf("after rewrite = %v, want %v", got, want)
	}
	// Deleting an absent value: 53, and nothing changes (all or nothing).
	err = modify(c, []string{alice}, []string{"CN=nobody,DC=example,DC=test"})
	if !goldap.IsErrorWithCode(err, 53) {
		t.Errorf("delete of an absent value = %v, want 53", err)
	}
	if got := members(t, c, false); !slices.Equal(got, []string{bob}) {
		t.Errorf("a failed Modify changed the group: %v", got)
	}
	// The rootDSE lists the control, the configuration NC the feature.
	res, err := c.Search(goldap.NewSearchRequest("", goldap.ScopeBaseObject, goldap.NeverDerefAliases, 0, 0, false, "(objectClass=*)", []string{"supportedControl", "configurationNamingContext"}, nil))
	if err != nil || len(res.Entries) != 1 || !slices.Contains(res.Entries[0].GetAttributeValues("supportedControl"), LinkTTLOID) {
		t.Errorf("rootDSE = %v %v, want the control listed", res, err)
	}
}

// Without the feature (Samba today) the syntax is an invalid DN and the
// control, sent as critical, is refused.
func TestLinkTTLRefusedWithoutTheFeature(t *testing.T) {
	_, c := start(t, false)
	if err := modify(c, []string{"<TTL=60," + alice + ">"}, nil); !goldap.IsErrorWithCode(err, goldap.LDAPResultInvalidDNSyntax) {
		t.Errorf("TTL add = %v, want 34 invalid DN", err)
	}
	_, err := c.Search(goldap.NewSearchRequest(groupD, goldap.ScopeBaseObject, goldap.NeverDerefAliases, 0, 0, false, "(objectClass=*)", []string{"member"}, []goldap.Control{critical{}}))
	if !goldap.IsErrorWithCode(err, goldap.LDAPResultUnavailableCriticalExtension) {
		t.Errorf("search with the critical control = %v, want 12", err)
	}
	if got := members(t, c, false); !slices.Equal(got, []string{bob}) {
		t.Errorf("members = %v", got)
	}
}
