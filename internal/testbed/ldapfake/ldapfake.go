// Package ldapfake is a tiny LDAP server speaking real BER over TCP, for the
// one behaviour no server here has: Windows' MaxValRange truncation. Asked
// for a plain "member" of a group with more values than MaxValRange, a
// Windows DC answers "member;range=0-1499" and the client must continue
// with "member;range=1500-*" until a range ends in "*". Samba returns every
// value instead (TESTBEDS.md), so continuation without explicit windows is
// only exercised here.
//
// It also models Active Directory's expiring links (Windows Server 2016
// Privileged Access Management, MS-ADTS 3.1.1.3.4.1.35 LDAP_SERVER_LINK_TTL),
// which no server here implements (Samba rejects the syntax), once
// EnableLinkTTL is called:
//   - a Modify may add a link value as "<TTL=seconds,DN>": the link expires
//     that many seconds later by the fake's clock (Advance moves it), and an
//     expired link is simply gone;
//   - a search that carries control 1.2.840.113556.1.4.2309 returns such a
//     link as "<TTL=remaining>,DN"; without the control, as the plain DN;
//   - adding a value already present (with or without a TTL) fails with 68,
//     deleting an absent one with 53, as Active Directory does;
//   - the rootDSE lists the control, and CN=Partitions in the configuration
//     naming context lists the Privileged Access Management feature in
//     msDS-EnabledFeature.
//
// Without EnableLinkTTL a "<TTL=...>" value is refused as an invalid DN
// (34, as Samba answers) and the control, sent as critical, with 12.
//
// It answers simple Bind (one fixed account), Search, Modify and Unbind.
// Searches ignore the filter: a base-scope search returns the base entry,
// any other scope every entry at or under the base; the client maps results
// back by DN, so extra entries are harmless. Everything else is answered
// with unwillingToPerform.
package ldapfake

import (
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
)

// Entry is one directory entry: attribute name -> values.
type Entry struct {
	DN    string
	Attrs map[string][]string
}

// Server is a running fake.
type Server struct {
	URL        string // ldap://127.0.0.1:PORT (no TLS)
	BindDN, PW string
	// MaxValRange is the most values of one attribute per response, like
	// Windows' 1,500 (0: no limit). -1 makes the fake ignore range options
	// as OpenLDAP does: "member;range=0-99" returns no attribute at all.
	MaxValRange int

	mu       sync.Mutex
	entries  []Entry
	searches []Search
	modifies []Modify
	conns    map[net.Conn]bool

	// Expiring links (EnableLinkTTL).
	linkTTL bool
	nc      string                          // naming context of the rootDSE
	offset  time.Duration                   // the fake's clock: time.Now()+offset
	expiry  map[string]map[string]time.Time // lower(entry DN) -> lower(value DN) -> expiry
}

// LinkTTLOID is LDAP_SERVER_LINK_TTL.
const LinkTTLOID = "1.2.840.113556.1.4.2309"

// pamFeature is the RDN of the Privileged Access Management optional feature.
const pamFeature = "CN=Privileged Access Management Feature,CN=Optional Features,CN=Directory Service,CN=Windows NT,CN=Services,"

// Modify records one modify request as received.
type Modify struct {
	DN       string
	Controls []string // control OIDs
	Changes  []string // "add member: <TTL=60,CN=...>", "delete member: CN=..."
}

// EnableLinkTTL makes the fake a Windows Server 2016+ DC with the
// Privileged Access Management feature: expiring links as described above.
// namingContext is the domain's DN (its configuration NC is below it).
func (s *Server) EnableLinkTTL(namingContext string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.linkTTL, s.nc = true, namingContext
}

// Advance moves the fake's clock forward: links whose TTL runs out expire.
func (s *Server) Advance(d time.Duration) {
	s.mu.Lock()
	s.offset += d
	s.mu.Unlock()
}

// Now is the fake's clock.
func (s *Server) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return time.Now().Add(s.offset)
}

// Modifies returns the modify requests received so far.
func (s *Server) Modifies() []Modify {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Modify(nil), s.modifies...)
}

// Values returns an attribute's live values of one entry as a client sees
// them without the control (expired links are gone), and the expiry of
// each TTL link by value.
func (s *Server) Values(entryDN, attr string) ([]string, map[string]time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now().Add(s.offset)
	for i := range s.entries {
		if strings.EqualFold(s.entries[i].DN, entryDN) {
			s.expireLocked(i, now)
			exp := map[string]time.Time{}
			for k, v := range s.expiry[strings.ToLower(entryDN)] {
				exp[k] = v
			}
			for k, v := range s.entries[i].Attrs {
				if strings.EqualFold(k, attr) {
					return append([]string(nil), v...), exp
				}
			}
			return nil, exp
		}
	}
	return nil, nil
}

// Search records one search request as received.
type Search struct {
	Base     string
	Scope    int64
	Attrs    []string
	Controls []string // control OIDs
}

// Start serves entries on a random loopback port until the test ends.
func Start(t testing.TB, bindDN, pw string, maxValRange int, entries ...Entry) *Server {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{URL: "ldap://" + l.Addr().String(), BindDN: bindDN, PW: pw, MaxValRange: maxValRange, entries: entries, conns: map[net.Conn]bool{}}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		l.Close()
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns[c] = true
			s.mu.Unlock()
			wg.Add(1)
			go func() { defer wg.Done(); s.serve(c) }()
		}
	}()
	return s
}

// Searches returns the searches received so far.
func (s *Server) Searches() []Search {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Search(nil), s.searches...)
}

func (s *Server) serve(c net.Conn) {
	defer func() {
		c.Close()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	bound := false
	for {
		p, err := ber.ReadPacket(c)
		if err != nil {
			return
		}
		if len(p.Children) < 2 {
			return
		}
		id, _ := p.Children[0].Value.(int64)
		op := p.Children[1]
		if op.ClassType != ber.ClassApplication {
			return
		}
		var out []*ber.Packet
		switch op.Tag {
		case 0: // BindRequest
			code, msg := 49, "invalid credentials"
			if len(op.Children) >= 3 && str(op.Children[1]) == s.BindDN && str(op.Children[2]) == s.PW {
				code, msg, bound = 0, "", true
			}
			out = append(out, result(1, code, msg))
		case 2: // UnbindRequest
			return
		case 3: // SearchRequest
			if !bound {
				out = append(out, result(5, 1, "bind first"))
				break
			}
			out = append(out, s.search(op, controls(p))...)
		case 6: // ModifyRequest
			if !bound {
				out = append(out, result(7, 1, "bind first"))
				break
			}
			out = append(out, s.modify(op, controls(p)))
		default:
			out = append(out, result(int(op.Tag)+1, 53, "not supported by ldapfake"))
		}
		for _, o := range out {
			msg := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "LDAP Response")
			msg.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, id, "MessageID"))
			msg.AppendChild(o)
			if _, err := c.Write(msg.Bytes()); err != nil {
				return
			}
		}
	}
}

// control is one request control: its OID and criticality.
type control struct {
	oid      string
	critical bool
}

// controls reads the controls of an LDAPMessage ([0] after the operation).
func controls(p *ber.Packet) []control {
	var out []control
	for _, c := range p.Children[2:] {
		if c.ClassType != ber.ClassContext || c.Tag != 0 {
			continue
		}
		for _, ctl := range c.Children {
			if len(ctl.Children) == 0 {
				continue
			}
			cc := control{oid: str(ctl.Children[0])}
			if len(ctl.Children) > 1 {
				if b, ok := ctl.Children[1].Value.(bool); ok {
					cc.critical = b
				}
			}
			out = append(out, cc)
		}
	}
	return out
}

func hasControl(cs []control, oid string) bool {
	for _, c := range cs {
		if c.oid == oid {
			return true
		}
	}
	return false
}

// unsupportedCritical names a critical control the fake does not know.
func (s *Server) unsupportedCritical(cs []control) string {
	for _, c := range cs {
		if !c.critical || c.oid == "1.2.840.113556.1.4.319" || c.oid == LinkTTLOID && s.linkTTL {
			continue
		}
		return c.oid
	}
	return ""
}

// parseTTL splits "<TTL=seconds,DN>" into its parts.
func parseTTL(v string) (int64, string, bool) {
	rest, ok := strings.CutPrefix(v, "<TTL=")
	if !ok || !strings.HasSuffix(rest, ">") {
		return 0, "", false
	}
	num, d, ok := strings.Cut(strings.TrimSuffix(rest, ">"), ",")
	if !ok {
		return 0, "", false
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || d == "" {
		return 0, "", false
	}
	return n, d, true
}

// expireLocked drops entry i's links whose TTL has run out. Attribute maps
// are never changed in place (a search may still be encoding the old one):
// a change makes a new map.
func (s *Server) expireLocked(i int, now time.Time) {
	e := &s.entries[i]
	exp := s.expiry[strings.ToLower(e.DN)]
	if len(exp) == 0 {
		return
	}
	gone := map[string]bool{}
	for v, at := range exp {
		if !now.Before(at) {
			gone[v] = true
			delete(exp, v)
		}
	}
	if len(gone) == 0 {
		return
	}
	attrs := make(map[string][]string, len(e.Attrs))
	for k, vals := range e.Attrs {
		var kept []string
		for _, v := range vals {
			if !gone[strings.ToLower(v)] {
				kept = append(kept, v)
			}
		}
		attrs[k] = kept
	}
	e.Attrs = attrs
}

// modify applies a ModifyRequest atomically: every change or none.
func (s *Server) modify(op *ber.Packet, cs []control) *ber.Packet {
	if len(op.Children) < 2 {
		return result(7, 2, "malformed modify")
	}
	target := str(op.Children[0])
	rec := Modify{DN: target}
	for _, c := range cs {
		rec.Controls = append(rec.Controls, c.oid)
	}
	type change struct {
		op   int64
		attr string
		vals []string
	}
	var changes []change
	for _, c := range op.Children[1].Children {
		if len(c.Children) < 2 || len(c.Children[1].Children) < 1 {
			return result(7, 2, "malformed change")
		}
		ch := change{attr: str(c.Children[1].Children[0])}
		ch.op, _ = c.Children[0].Value.(int64)
		if len(c.Children[1].Children) > 1 {
			for _, v := range c.Children[1].Children[1].Children {
				ch.vals = append(ch.vals, str(v))
			}
		}
		verb := map[int64]string{0: "add", 1: "delete", 2: "replace"}[ch.op]
		for _, v := range ch.vals {
			rec.Changes = append(rec.Changes, verb+" "+ch.attr+": "+v)
		}
		changes = append(changes, ch)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.modifies = append(s.modifies, rec)
	if oid := s.unsupportedCritical(cs); oid != "" {
		return result(7, 12, "unsupported critical extension "+oid)
	}
	idx := -1
	for i := range s.entries {
		if strings.EqualFold(s.entries[i].DN, target) {
			idx = i
		}
	}
	if idx < 0 {
		return result(7, 32, "no such object")
	}
	now := time.Now().Add(s.offset)
	s.expireLocked(idx, now)
	// Work on copies; commit only if every change applies.
	attrs := map[string][]string{}
	for k, v := range s.entries[idx].Attrs {
		attrs[k] = append([]string(nil), v...)
	}
	exp := map[string]time.Time{}
	for k, v := range s.expiry[strings.ToLower(target)] {
		exp[k] = v
	}
	key := func(name string) string {
		for k := range attrs {
			if strings.EqualFold(k, name) {
				return k
			}
		}
		return name
	}
	for _, ch := range changes {
		k := key(ch.attr)
		switch ch.op {
		case 0: // add
			for _, v := range ch.vals {
				d := v
				var ttl int64
				if strings.HasPrefix(v, "<") {
					n, plain, ok := parseTTL(v)
					if !s.linkTTL || !ok {
						return result(7, 34, "invalid DN: "+v)
					}
					ttl, d = n, plain
				}
				for _, have := range attrs[k] {
					if strings.EqualFold(have, d) {
						return result(7, 68, "Attribute "+ch.attr+" already exists for target GUID")
					}
				}
				attrs[k] = append(attrs[k], d)
				if ttl > 0 {
					exp[strings.ToLower(d)] = now.Add(time.Duration(ttl) * time.Second)
				}
			}
		case 1: // delete
			if len(ch.vals) == 0 {
				delete(attrs, k)
				continue
			}
			for _, v := range ch.vals {
				d := v
				if _, plain, ok := parseTTL(v); ok {
					d = plain
				}
				found := -1
				for i, have := range attrs[k] {
					if strings.EqualFold(have, d) {
						found = i
					}
				}
				if found < 0 {
					return result(7, 53, "no such value: "+d)
				}
				attrs[k] = append(attrs[k][:found], attrs[k][found+1:]...)
				delete(exp, strings.ToLower(d))
			}
		default:
			return result(7, 53, "not supported by ldapfake")
		}
	}
	s.entries[idx].Attrs = attrs
	if s.expiry == nil {
		s.expiry = map[string]map[string]time.Time{}
	}
	s.expiry[strings.ToLower(target)] = exp
	return result(7, 0, "")
}

func str(p *ber.Packet) string {
	if p.Value != nil {
		if s, ok := p.Value.(string); ok {
			return s
		}
	}
	return string(p.Data.Bytes())
}

func result(tag, code int, msg string) *ber.Packet {
	r := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ber.Tag(tag), nil, "Result")
	r.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, int64(code), "resultCode"))
	r.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "", "matchedDN"))
	r.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, msg, "diagnosticMessage"))
	return r
}

func (s *Server) search(op *ber.Packet, cs []control) []*ber.Packet {
	if len(op.Children) < 8 {
		return []*ber.Packet{result(5, 2, "malformed search")}
	}
	base := str(op.Children[0])
	scope, _ := op.Children[1].Value.(int64)
	var attrs []string
	for _, a := range op.Children[7].Children {
		attrs = append(attrs, str(a))
	}
	s.mu.Lock()
	s.searches = append(s.searches, Search{Base: base, Scope: scope, Attrs: attrs, Controls: oids(cs)})
	if oid := s.unsupportedCritical(cs); oid != "" {
		s.mu.Unlock()
		return []*ber.Packet{result(5, 12, "unsupported critical extension "+oid)}
	}
	now := time.Now().Add(s.offset)
	for i := range s.entries {
		s.expireLocked(i, now)
	}
	entries := append([]Entry(nil), s.entries...)
	withTTL := s.linkTTL && hasControl(cs, LinkTTLOID)
	expiry := map[string]map[string]time.Time{}
	for k, v := range s.expiry {
		expiry[k] = map[string]time.Time{}
		for vk, at := range v {
			expiry[k][vk] = at
		}
	}
	if base == "" && scope == 0 {
		entries = []Entry{s.rootDSELocked()}
	} else if s.linkTTL {
		entries = append(entries, Entry{DN: "CN=Partitions,CN=Configuration," + s.nc, Attrs: map[string][]string{
			"objectClass": {"crossRefContainer"}, "msDS-EnabledFeature": {pamFeature + "CN=Configuration," + s.nc},
		}})
	}
	s.mu.Unlock()

	lb := strings.ToLower(base)
	var out []*ber.Packet
	for _, e := range entries {
		le := strings.ToLower(e.DN)
		if scope == 0 && le != lb || scope != 0 && le != lb && !strings.HasSuffix(le, ","+lb) {
			continue
		}
		pe := ber.Encode(ber.ClassApplication, ber.TypeConstructed, 4, nil, "SearchResultEntry")
		pe.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, e.DN, "objectName"))
		list := ber.NewSequence("attributes")
		for _, a := range attrs {
			name, vals, ok := s.values(e, a)
			if !ok {
				continue
			}
			if withTTL {
				vals = ttlForm(vals, expiry[le], now)
			}
			pa := ber.NewSequence("attribute")
			pa.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, name, "type"))
			set := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSet, nil, "vals")
			for _, v := range vals {
				set.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, v, "value"))
			}
			pa.AppendChild(set)
			list.AppendChild(pa)
		}
		pe.AppendChild(list)
		out = append(out, pe)
	}
	if len(out) == 0 && scope == 0 && base != "" {
		return []*ber.Packet{result(5, 32, "no such object")}
	}
	return append(out, result(5, 0, ""))
}

func oids(cs []control) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.oid)
	}
	return out
}

// ttlForm writes each link value that has a TTL as "<TTL=remaining>,DN"
// (remaining in whole seconds, rounded up), as a DC answers a search that
// carries LDAP_SERVER_LINK_TTL.
func ttlForm(vals []string, exp map[string]time.Time, now time.Time) []string {
	if len(exp) == 0 {
		return vals
	}
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = v
		if at, ok := exp[strings.ToLower(v)]; ok {
			left := int64(math.Ceil(at.Sub(now).Seconds()))
			out[i] = fmt.Sprintf("<TTL=%d>,%s", left, v)
		}
	}
	return out
}

// rootDSELocked is the rootDSE: the supported controls, and with expiring
// links the naming contexts.
func (s *Server) rootDSELocked() Entry {
	e := Entry{DN: "", Attrs: map[string][]string{"supportedControl": {"1.2.840.113556.1.4.319"}}}
	if s.linkTTL {
		e.Attrs["supportedControl"] = append(e.Attrs["supportedControl"], LinkTTLOID)
		e.Attrs["defaultNamingContext"] = []string{s.nc}
		e.Attrs["configurationNamingContext"] = []string{"CN=Configuration," + s.nc}
	}
	return e
}

// values answers one requested attribute the way a Windows DC does:
// multi-valued attributes longer than MaxValRange come back as a window
// "name;range=LO-HI", the last window as "name;range=LO-*".
func (s *Server) values(e Entry, req string) (string, []string, bool) {
	name, opt, _ := strings.Cut(req, ";")
	var all []string
	found := false
	for k, v := range e.Attrs {
		if strings.EqualFold(k, name) {
			all, found, name = v, true, k
		}
	}
	if !found {
		return "", nil, false
	}
	lo, hi := 0, -1 // hi -1: to the end
	ranged := false
	if r, ok := strings.CutPrefix(strings.ToLower(opt), "range="); ok {
		if s.MaxValRange < 0 {
			return "", nil, false
		}
		a, b, _ := strings.Cut(r, "-")
		var err error
		if lo, err = strconv.Atoi(a); err != nil {
			return "", nil, false
		}
		if b != "*" {
			if hi, err = strconv.Atoi(b); err != nil {
				return "", nil, false
			}
		}
		ranged = true
	}
	n := len(all)
	if !ranged && (s.MaxValRange <= 0 || n <= s.MaxValRange) {
		return name, all, true
	}
	if lo >= n {
		return fmt.Sprintf("%s;range=%d-*", name, lo), nil, true
	}
	end := n - 1
	if hi >= 0 && hi < end {
		end = hi
	}
	if s.MaxValRange > 0 && end-lo+1 > s.MaxValRange {
		end = lo + s.MaxValRange - 1
	}
	if end == n-1 {
		return fmt.Sprintf("%s;range=%d-*", name, lo), all[lo:], true
	}
	return fmt.Sprintf("%s;range=%d-%d", name, lo, end), all[lo : end+1], true
}
