package grants

import (
	"fmt"
	"sync"
	"sync/atomic"

	"golang.org/x/crypto/ssh"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/internal/parallel"
	"github.com/jitform/jitform/state"
)

// SSHVerifier checks signatures against the ssh_key of the actor an event
// names (state.VerifyEventKey). Built with the events to replay, it checks
// all their signatures up front on every core: signature verification is
// nearly all of a replay's cost, and each check is independent.
type SSHVerifier struct {
	cfg  *config.Config
	memo Memo // nil: none
	mu   sync.Mutex
	keys map[string]actorKey
	done map[eventKey]verified
	// checked counts the signatures actually verified (not answered by
	// the memo), for tests.
	checked atomic.Int64
}

// actorKey is an actor's parsed ssh_key and its SHA256 fingerprint (part
// of every memo key).
type actorKey struct {
	pub ssh.PublicKey
	fp  string
}

type verified struct {
	info state.SignatureInfo
	err  error
}

// eventKey identifies an event by everything its signature covers, and
// the signature.
type eventKey struct {
	seq                          int64
	typ, actor, at, payload, sig string
}

func keyOf(ev state.Event) eventKey {
	return eventKey{ev.Seq, ev.Type, ev.Actor, ev.Time.UTC().String(), string(ev.Payload), ev.Sig}
}

// NewSSHVerifier returns a verifier for cfg's actors, with the signatures
// of events (grant events by declared actors) already checked.
func NewSSHVerifier(cfg *config.Config, events []state.Event) *SSHVerifier {
	return NewSSHVerifierMemo(cfg, events, nil)
}

// NewSSHVerifierMemo is NewSSHVerifier that first asks memo (nil: none)
// for each signature, and adds to it each one that verifies.
func NewSSHVerifierMemo(cfg *config.Config, events []state.Event, memo Memo) *SSHVerifier {
	v := &SSHVerifier{cfg: cfg, memo: memo, keys: map[string]actorKey{}, done: map[eventKey]verified{}}
	type job struct {
		ev  state.Event
		key actorKey
		res verified
	}
	var jobs []job
	for _, ev := range events {
		if !state.IsGrantEvent(ev.Type) {
			continue
		}
		if k, err := v.key(ev.Actor); err == nil {
			jobs = append(jobs, job{ev: ev, key: k})
		}
	}
	if len(jobs) == 0 {
		return v
	}
	parallel.Chunks(len(jobs), 32, func(lo, hi int) {
		for n := lo; n < hi; n++ {
			info, err := v.check(jobs[n].ev, jobs[n].key)
			jobs[n].res = verified{info, err}
		}
	})
	for _, j := range jobs {
		v.done[keyOf(j.ev)] = j.res
	}
	return v
}

func (v *SSHVerifier) key(actor string) (actorKey, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if k, ok := v.keys[actor]; ok {
		return k, nil
	}
	a := v.cfg.ActorByName(actor)
	if a == nil {
		return actorKey{}, fmt.Errorf("%q is not a declared actor (add an actor block with its ssh_key)", actor)
	}
	pub, err := state.ParsePublicKey(a.SSHKey)
	if err != nil {
		return actorKey{}, fmt.Errorf("actor %s: %v", actor, err)
	}
	k := actorKey{pub: pub, fp: ssh.FingerprintSHA256(pub)}
	v.keys[actor] = k
	return k, nil
}

// Verify checks ev's signature against its actor's declared ssh_key.
func (v *SSHVerifier) Verify(ev state.Event) error {
	_, err := v.VerifyInfo(ev)
	return err
}

// VerifyInfo is Verify that also says how the signature was made.
func (v *SSHVerifier) VerifyInfo(ev state.Event) (state.SignatureInfo, error) {
	k, err := v.key(ev.Actor)
	if err != nil {
		return state.SignatureInfo{}, err
	}
	v.mu.Lock()
	res, ok := v.done[keyOf(ev)]
	v.mu.Unlock()
	if ok {
		return res.info, res.err
	}
	return v.check(ev, k)
}

// check verifies ev's signature against the actor's key, unless the memo
// has it. Only a signature that verified is added to the memo.
func (v *SSHVerifier) check(ev state.Event, key actorKey) (state.SignatureInfo, error) {
	if v.memo == nil {
		v.checked.Add(1)
		return state.VerifyEventInfo(ev, key.pub)
	}
	mk := memoKey(key.fp, ev)
	if info, hit := v.memo.Lookup(mk); hit {
		return info, nil
	}
	v.checked.Add(1)
	info, err := state.VerifyEventInfo(ev, key.pub)
	if err == nil {
		v.memo.Add(mk, info)
	}
	return info, err
}
