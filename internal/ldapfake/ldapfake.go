// Package ldapfake is a tiny LDAP server speaking real BER over TCP, for the
// one behaviour no server here has: Windows' MaxValRange truncation. Asked
// for a plain "member" of a group with more values than MaxValRange, a
// Windows DC answers "member;range=0-1499" and the client must continue
// with "member;range=1500-*" until a range ends in "*". Samba returns every
// value instead (TESTBEDS.md), so continuation without explicit windows is
// only exercised here.
//
// It answers simple Bind (one fixed account), Search and Unbind. Searches
// ignore the filter: a base-scope search returns the base entry, any other
// scope every entry at or under the base; the client maps results back by
// DN, so extra entries are harmless. Everything else is answered with
// unwillingToPerform.
package ldapfake

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"

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
	conns    map[net.Conn]bool
}

// Search records one search request as received.
type Search struct {
	Base  string
	Scope int64
	Attrs []string
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
			out = append(out, s.search(op)...)
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

func (s *Server) search(op *ber.Packet) []*ber.Packet {
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
	s.searches = append(s.searches, Search{Base: base, Scope: scope, Attrs: attrs})
	entries := s.entries
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
	if len(out) == 0 && scope == 0 {
		return []*ber.Packet{result(5, 32, "no such object")}
	}
	return append(out, result(5, 0, ""))
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
