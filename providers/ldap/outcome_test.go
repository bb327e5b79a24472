package ldap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	goldap "github.com/go-ldap/ldap/v3"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/internal/testbed/slapdtest"
	"github.com/jitform/jitform/providers"
)

// replyDropper is a TCP proxy on 127.0.0.1 in front of a real server. It
// relays requests unchanged and responses packet by packet; when the
// server's dropAt-th ModifyResponse arrives (the server has committed the
// write by then) it closes both connections instead of relaying it: a
// reply lost on the way back.
type replyDropper struct {
	URL     string
	mu      sync.Mutex
	dropAt  int
	seen    int
	dropped int
}

func startReplyDropper(t *testing.T, upstream string, dropAt int) *replyDropper {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &replyDropper{URL: "ldap://" + l.Addr().String(), dropAt: dropAt}
	var wg sync.WaitGroup
	var conns []net.Conn
	var cmu sync.Mutex
	t.Cleanup(func() {
		l.Close()
		cmu.Lock()
		for _, c := range conns {
			c.Close()
		}
		cmu.Unlock()
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
			s, err := net.Dial("tcp", upstream)
			if err != nil {
				c.Close()
				continue
			}
			cmu.Lock()
			conns = append(conns, c, s)
			cmu.Unlock()
			wg.Add(2)
			go func() { defer wg.Done(); _, _ = io.Copy(s, c); s.Close() }()
			go func() {
				defer wg.Done()
				defer c.Close()
				defer s.Close()
				for {
					p, err := ber.ReadPacket(s)
					if err != nil {
						return
					}
					if len(p.Children) >= 2 && p.Children[1].ClassType == ber.ClassApplication && p.Children[1].Tag == goldap.ApplicationModifyResponse {
						d.mu.Lock()
						d.seen++
						drop := d.seen == d.dropAt
						if drop {
							d.dropped++
						}
						d.mu.Unlock()
						if drop {
							return
						}
					}
					if _, err := c.Write(p.Bytes()); err != nil {
						return
					}
				}
			}()
		}
	}()
	return d
}

func (d *replyDropper) Dropped() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.dropped
}

// The outcome rule: once a Modify has been sent, only a result code from the
// server makes it done, already or failed. A reply lost after slapd
// committed the write is unknown, on the batch path and on the
// member-by-member retry path alike, and the member really is in the group.
func TestLostReplyAfterCommitIsUnknown(t *testing.T) {
	s := slapdtest.Start(t, seed)
	ctx := context.Background()
	upstream := s.URL[len("ldap://"):]
	adminsDN := "cn=admins,ou=groups,dc=example,dc=org"
	bob := providers.Member{ID: canon(t, "uid=bob,ou=people,dc=example,dc=org"), Name: "uid=bob,ou=people,dc=example,dc=org"}
	carol := providers.Member{ID: canon(t, "uid=carol,ou=people,dc=example,dc=org"), Name: "uid=carol,ou=people,dc=example,dc=org"}
	viaProxy := func(d *replyDropper) *config.Target {
		return ldapTarget(s, func(c *config.LDAPTarget) {
			no := false
			c.URL, c.StartTLS, c.InsecurePlaintext = d.URL, &no, true
		})
	}
	has := func(m providers.Member) bool {
		for _, v := range s.Values(t, adminsDN, "member") {
			if canon(t, v) == m.ID {
				return true
			}
		}
		return false
	}

	t.Run("batch", func(t *testing.T) {
		d := startReplyDropper(t, upstream, 1)
		tg := viaProxy(d)
		p := open(t, tg)
		outs, err := p.Apply(ctx, []providers.GroupChange{{Group: group(tg, "admins", adminsDN), Changes: []providers.MemberChange{{Action: providers.Add, Member: bob}}}})
		if err != nil {
			t.Fatal(err)
		}
		if d.Dropped() != 1 {
			t.Fatalf("the proxy dropped %d replies, want 1", d.Dropped())
		}
		if outs[0].Status != providers.Unknown || outs[0].Err == nil {
			t.Errorf("add whose reply was lost = %s %v, want unknown", outs[0].Status, outs[0].Err)
		}
		if !has(bob) {
			t.Errorf("bob is not in %s on slapd: the test did not lose a committed reply", adminsDN)
		}
		// The connection is gone. go-ldap answers a search on a closed
		// connection with no entries and no error; the provider must
		// say the connection is closed, never "no entry" or "no members".
		admins := group(tg, "admins", adminsDN)
		_, err = p.Read(ctx, []*config.Group{admins})
		if err == nil || !strings.Contains(err.Error(), "connection to the server is closed") {
			t.Errorf("Read on a dropped connection = %v, want an error saying the connection is closed", err)
		}
		// The Modify is never sent (the read before it fails): failed.
		outs, _ = p.Apply(ctx, []providers.GroupChange{{Group: admins, Changes: []providers.MemberChange{{Action: providers.Remove, Member: bob}}}})
		if outs[0].Status != providers.Failed || !strings.Contains(outs[0].Err.Error(), "connection to the server is closed") {
			t.Errorf("Apply on a dropped connection = %s %v, want failed before writing, naming the closed connection", outs[0].Status, outs[0].Err)
		}
		if !has(bob) {
			t.Errorf("bob was removed through a closed connection")
		}
	})

	t.Run("member_by_member", func(t *testing.T) {
		// Batch add of bob and carol; bob appears between read and
		// write, so the batch is answered 20 and the provider retries
		// one by one: bob's answer (20) comes back, carol's is lost.
		s.Conn(t).Modify(func() *goldap.ModifyRequest {
			r := goldap.NewModifyRequest(adminsDN, nil)
			r.Delete("member", []string{bob.Name})
			return r
		}())
		d := startReplyDropper(t, upstream, 3)
		tg := viaProxy(d)
		p := open(t, tg)
		p.beforeModify = func() {
			r := goldap.NewModifyRequest(adminsDN, nil)
			r.Add("member", []string{bob.Name})
			if err := s.Conn(t).Modify(r); err != nil {
				t.Fatal(err)
			}
		}
		outs, err := p.Apply(ctx, []providers.GroupChange{{Group: group(tg, "admins", adminsDN), Changes: []providers.MemberChange{{Action: providers.Add, Member: bob}, {Action: providers.Add, Member: carol}}}})
		if err != nil {
			t.Fatal(err)
		}
		if d.Dropped() != 1 {
			t.Fatalf("the proxy dropped %d replies, want 1", d.Dropped())
		}
		if outs[0].Status != providers.Already {
			t.Errorf("bob (answered 20) = %s %v, want already", outs[0].Status, outs[0].Err)
		}
		if outs[1].Status != providers.Unknown || outs[1].Err == nil {
			t.Errorf("carol (reply lost) = %s %v, want unknown", outs[1].Status, outs[1].Err)
		}
		if !has(carol) {
			t.Errorf("carol is not in %s on slapd: the test did not lose a committed reply", adminsDN)
		}
	})
}

// serverError is what go-ldap makes of a result the server sent.
func serverError(code int) error {
	msg := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "LDAP Response")
	msg.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, int64(7), "MessageID"))
	r := ber.Encode(ber.ClassApplication, ber.TypeConstructed, goldap.ApplicationModifyResponse, nil, "Result")
	r.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, int64(code), "resultCode"))
	r.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "", "matchedDN"))
	r.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "server says", "diagnosticMessage"))
	msg.AppendChild(r)
	return goldap.GetLDAPError(msg)
}

// The classifier over go-ldap's error kinds: only a result code the server
// sent yields done, already or failed; every client-side error after the
// request may have left is unknown; a request that never left is failed.
func TestOutcomeRuleOnlyServerResultCodesAreKnown(t *testing.T) {
	garbled := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "LDAP Response")
	for _, tc := range []struct {
		name string
		err  error
		want providers.Status
	}{
		{"success", nil, providers.Done},
		{"server 20 typeOrValueExists (OpenLDAP already a member)", serverError(20), providers.Already},
		{"server 16 noSuchAttribute (OpenLDAP not a member)", serverError(16), providers.Already},
		{"server 68 entryAlreadyExists (AD already a member)", serverError(68), providers.Already},
		{"server 53 unwillingToPerform (AD not a member)", serverError(53), providers.Already},
		{"server 50 insufficientAccessRights", serverError(50), providers.Failed},
		{"server 65 objectClassViolation", serverError(65), providers.Failed},
		{"server 32 noSuchObject", serverError(32), providers.Failed},
		{"server 51 busy", serverError(51), providers.Failed},
		{"server 85 (a code libldap uses client-side) sent by the server", serverError(85), providers.Failed},
		{"wrapped server result", fmt.Errorf("modify x: %w", serverError(50)), providers.Failed},
		{"lost reply: unable to read LDAP response packet: EOF", goldap.NewError(goldap.ErrorNetwork, errors.New("unable to read LDAP response packet: EOF")), providers.Unknown},
		{"response channel closed", goldap.NewError(goldap.ErrorNetwork, errors.New("ldap: response channel closed")), providers.Unknown},
		{"connection closed", goldap.NewError(goldap.ErrorNetwork, errors.New("ldap: connection closed")), providers.Unknown},
		{"go-ldap's own timeout", goldap.NewError(goldap.ErrorNetwork, errors.New("ldap: connection timed out")), providers.Unknown},
		{"a 20 made up client-side, without a packet", goldap.NewError(goldap.LDAPResultAttributeOrValueExists, errors.New("x")), providers.Unknown},
		{"client code 85 without a packet", goldap.NewError(goldap.LDAPResultTimeout, errors.New("timeout")), providers.Unknown},
		{"unparsable response", goldap.GetLDAPError(garbled), providers.Unknown},
		{"unexpected response tag", goldap.NewError(goldap.ErrorUnexpectedResponse, errors.New("unexpected")), providers.Unknown},
		{"plain unexpected response", errors.New("ldap: unexpected response: 9"), providers.Unknown},
		{"io.EOF", io.EOF, providers.Unknown},
		{"connection reset", &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, providers.Unknown},
		{"i/o timeout", &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}, providers.Unknown},
		{"ctx deadline after sending", fmt.Errorf("no answer: %w", context.DeadlineExceeded), providers.Unknown},
		{"ctx cancelled after sending", context.Canceled, providers.Unknown},
		{"never sent: ctx ended waiting for a slot", fmt.Errorf("%w: %w", errNotSent, context.DeadlineExceeded), providers.Failed},
	} {
		if got := classify(tc.err); got != tc.want {
			t.Errorf("%s: classify(%v) = %s, want %s", tc.name, tc.err, got, tc.want)
		}
	}
}

// A Modify that never left (ctx over before a slot was free) is failed,
// not unknown: nothing reached the server.
func TestOutcomeModifyNeverSentIsFailed(t *testing.T) {
	s := slapdtest.Start(t, seed)
	tg := ldapTarget(s, nil)
	p := open(t, tg)
	ge := &groupEntry{dn: "cn=admins,ou=groups,dc=example,dc=org", shape: shape{"groupOfNames", "member"}}
	// Hold every slot so the Modify cannot start.
	for range cap(p.sem) {
		p.sem <- struct{}{}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	st, err := p.one(ctx, ge, "uid=bob,ou=people,dc=example,dc=org", true)
	if st != providers.Failed || err == nil {
		t.Errorf("Modify never sent = %s %v, want failed", st, err)
	}
	for range cap(p.sem) {
		<-p.sem
	}
	if got := s.Values(t, ge.dn, "member"); slices.ContainsFunc(got, func(v string) bool { return canon(t, v) == canon(t, "uid=bob,ou=people,dc=example,dc=org") }) {
		t.Errorf("bob was added by a Modify that was never sent: %v", got)
	}
}
