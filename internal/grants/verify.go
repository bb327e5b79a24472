package grants

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"golang.org/x/crypto/ssh"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/state"
)

// SSHVerifier checks signatures against the ssh_key of the actor an event
// names (state.VerifyEventKey). Built with the events to replay, it checks
// all their signatures up front on every core: signature verification is
// nearly all of a replay's cost, and each check is independent.
type SSHVerifier struct {
	cfg  *config.Config
	mu   sync.Mutex
	keys map[string]ssh.PublicKey
	done map[eventKey]verified
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
	v := &SSHVerifier{cfg: cfg, keys: map[string]ssh.PublicKey{}, done: map[eventKey]verified{}}
	type job struct {
		ev  state.Event
		pub ssh.PublicKey
		res verified
	}
	var jobs []job
	for _, ev := range events {
		if !state.IsGrantEvent(ev.Type) {
			continue
		}
		if pub, err := v.key(ev.Actor); err == nil {
			jobs = append(jobs, job{ev: ev, pub: pub})
		}
	}
	if len(jobs) == 0 {
		return v
	}
	workers := min(runtime.GOMAXPROCS(0), (len(jobs)+31)/32)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n := int(next.Add(1)) - 1
				if n >= len(jobs) {
					return
				}
				info, err := state.VerifyEventInfo(jobs[n].ev, jobs[n].pub)
				jobs[n].res = verified{info, err}
			}
		}()
	}
	wg.Wait()
	for _, j := range jobs {
		v.done[keyOf(j.ev)] = j.res
	}
	return v
}

func (v *SSHVerifier) key(actor string) (ssh.PublicKey, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if k, ok := v.keys[actor]; ok {
		return k, nil
	}
	a := v.cfg.ActorByName(actor)
	if a == nil {
		return nil, fmt.Errorf("%q is not a declared actor (add an actor block with its ssh_key)", actor)
	}
	k, err := state.ParsePublicKey(a.SSHKey)
	if err != nil {
		return nil, fmt.Errorf("actor %s: %v", actor, err)
	}
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
	pub, err := v.key(ev.Actor)
	if err != nil {
		return state.SignatureInfo{}, err
	}
	v.mu.Lock()
	res, ok := v.done[keyOf(ev)]
	v.mu.Unlock()
	if ok {
		return res.info, res.err
	}
	return state.VerifyEventInfo(ev, pub)
}
