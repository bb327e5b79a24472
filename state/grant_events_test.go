package state

import (
	"strings"
	"testing"
	"time"
)

// TestARequestForNoTimeIsRefused: a request's window must last: a zero or
// negative duration is refused with the grant named (the ledger's grant
// then does not count), the shortest positive one is read as written.
func TestARequestForNoTimeIsRefused(t *testing.T) {
	for _, tc := range []struct {
		duration string
		want     time.Duration
		err      string
	}{
		{"1ns", time.Nanosecond, ""},
		{"2h0m0s", 2 * time.Hour, ""},
		{"0s", 0, `grant g-aaaaaaaaaa: duration "0s" is not positive`},
		{"-1ns", 0, `grant g-aaaaaaaaaa: duration "-1ns" is not positive`},
		{"2 hours", 0, `grant g-aaaaaaaaaa: duration "2 hours": time: unknown unit`},
	} {
		d, err := GrantRequest{ID: "g-aaaaaaaaaa", Duration: tc.duration}.DurationValue()
		switch {
		case tc.err == "" && (err != nil || d != tc.want):
			t.Errorf("duration %q = %v, %v; want %v", tc.duration, d, err, tc.want)
		case tc.err != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.err)):
			t.Errorf("duration %q = %v, %v; want the error %q", tc.duration, d, err, tc.err)
		}
	}
}

// TestGrantPayloadsDecodeOrSayWhich: a request's and a decision's payload
// decode to what was signed; one that does not decode is an error naming
// what was being decoded (the replay then warns that the event does not
// count), never a zero request or decision taken as real.
func TestGrantPayloadsDecodeOrSayWhich(t *testing.T) {
	at := time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC)
	req, err := NewSignedEvent(EventRequest, "alice", at, GrantRequest{ID: "g-aaaaaaaaaa", Policy: "policy.db", Principal: "alice", Duration: "1h0m0s", Reason: "chg"})
	if err != nil {
		t.Fatal(err)
	}
	r, err := DecodeGrantRequest(req)
	if err != nil || r.ID != "g-aaaaaaaaaa" || r.Policy != "policy.db" || r.Duration != "1h0m0s" {
		t.Errorf("DecodeGrantRequest = %+v, %v; want the request signed", r, err)
	}
	dec, err := NewSignedEvent(EventRevoke, "bob", at, GrantDecision{Grant: "g-aaaaaaaaaa", Request: req.Hash, Reason: "done"})
	if err != nil {
		t.Fatal(err)
	}
	d, err := DecodeGrantDecision(dec)
	if err != nil || d.Grant != "g-aaaaaaaaaa" || d.Reason != "done" {
		t.Errorf("DecodeGrantDecision = %+v, %v; want the revocation signed", d, err)
	}

	bad := Event{Type: EventApprove, Payload: []byte(`{"grant":7}`)}
	if _, err := DecodeGrantDecision(bad); err == nil || !strings.HasPrefix(err.Error(), "decode approve payload: ") {
		t.Errorf("DecodeGrantDecision of a number for the grant = %v, want decode approve payload: ...", err)
	}
	bad = Event{Type: EventRequest, Payload: []byte(`["g-aaaaaaaaaa"]`)}
	if _, err := DecodeGrantRequest(bad); err == nil || !strings.HasPrefix(err.Error(), "decode request payload: ") {
		t.Errorf("DecodeGrantRequest of an array = %v, want decode request payload: ...", err)
	}
}
