package winrm

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/internal/testbed/winrmtest"
	"github.com/jitform/jitform/providers"
)

const (
	user = `CORP\svc-jitform`
	pass = "winrm-Secret-4471"
)

func host(name string) string { return name + "." + winrmtest.Domain }

func openHost(t testing.TB, s *winrmtest.Server, name string, mod func(*config.WinRMTarget)) *target {
	t.Helper()
	c := &config.WinRMTarget{Address: host(name), HTTPS: true, CAFile: s.CAFile, Auth: config.WinRMAuthNTLM,
		User: user, Password: config.NewSecret(pass), Timeout: 10 * time.Second}
	if mod != nil {
		mod(c)
	}
	tg := &config.Target{Kind: "winrm", Name: "web", Key: host(name), Addr: `target.winrm.web["` + host(name) + `"]`, WinRM: c}
	p, err := open(context.Background(), tg, providers.Options{}, s.Dial)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func grp(name, sidOrName string) *config.Group {
	return &config.Group{Name: name, Addr: "group." + name, BaseAddr: "group." + name, GroupName: sidOrName}
}

func memberIDs(o providers.Observation) []string {
	var ids []string
	for _, m := range o.Members {
		ids = append(ids, m.ID)
	}
	slices.Sort(ids)
	return ids
}

func TestObserveAndApplyOneShellPerPhase(t *testing.T) {
	s := winrmtest.New(t, user, pass, host("web01"))
	h := s.Host(host("web01"))
	// An orphaned SID: a deleted account still listed in the group.
	h.Groups[0].Members = append(h.Groups[0].Members, "S-1-5-21-9-9-9-4242")
	p := openHost(t, s, "web01", nil)
	ctx := context.Background()
	admins, rdu := grp("admins", "S-1-5-32-544"), grp("rdu", "Remote Desktop Users")

	obs, res, err := p.Observe(ctx, []*config.Group{admins, rdu, grp("nope", "No Such Group")},
		[]string{`CORP\alice`, "bob@corp.example", "S-1-5-21-9-9-9-1106", `CORP\nobody`})
	if err != nil {
		t.Fatal(err)
	}
	if _, shells := h.Stats(); shells != 1 {
		t.Errorf("plan phase opened %d shells, want 1", shells)
	}
	if got := memberIDs(obs["group.admins"]); !slices.Equal(got, []string{"S-1-5-21-1-2-3-500", "S-1-5-21-9-9-9-4242"}) {
		t.Errorf("admins = %v (the orphaned SID must be read)", got)
	}
	if got := obs["group.rdu"]; got.Err != nil || len(got.Members) != 0 {
		t.Errorf("rdu = %+v", got)
	}
	if obs["group.nope"].Err == nil {
		t.Error("a missing group must carry an error")
	}
	for p, want := range map[string]string{`CORP\alice`: "S-1-5-21-9-9-9-1104", "bob@corp.example": "S-1-5-21-9-9-9-1105", "S-1-5-21-9-9-9-1106": "S-1-5-21-9-9-9-1106"} {
		if r := res[p]; r.Err != nil || r.Member.ID != want {
			t.Errorf("resolve %q = %+v, want %s", p, r, want)
		}
	}
	if res[`CORP\nobody`].Err == nil {
		t.Error("an unknown account must not resolve")
	}

	outs, err := p.Apply(ctx, []providers.GroupChange{
		{Group: admins, Changes: []providers.MemberChange{
			{Action: providers.Add, Member: res[`CORP\alice`].Member},
			{Action: providers.Remove, Member: providers.Member{ID: "S-1-5-21-9-9-9-4242"}},
			{Action: providers.Add, Member: providers.Member{ID: "S-1-5-21-1-2-3-500"}}, // already
		}},
		{Group: rdu, Changes: []providers.MemberChange{{Action: providers.Remove, Member: res[`CORP\alice`].Member}}}, // not there
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []providers.Status{providers.Done, providers.Done, providers.Already, providers.Already}
	for i, o := range outs {
		if o.Status != want[i] {
			t.Errorf("outcome %d = %s %v, want %s", i, o.Status, o.Err, want[i])
		}
	}
	if _, shells := h.Stats(); shells != 2 {
		t.Errorf("apply phase opened %d shells in all, want 1 more", shells-1)
	}
	if got := h.Members("S-1-5-32-544"); !slices.Equal(got, []string{"S-1-5-21-1-2-3-500", "S-1-5-21-9-9-9-1104"}) {
		t.Errorf("Administrators on the host = %v", got)
	}
}

// Whatever the data, the command line and the script are the same bytes:
// data travels as JSON on stdin and never becomes code.
func TestHostileDataNeverChangesTheCode(t *testing.T) {
	s := winrmtest.New(t, user, pass, host("web01"))
	h := s.Host(host("web01"))
	p := openHost(t, s, "web01", nil)
	hostile := []string{
		`'; Remove-Item C:\ -Recurse; '`, "\"$(Stop-Computer)\"", "`$env:PATH`", "a;b", "line1\nline2\r\n",
		"$(calc.exe)", "@{}", "ünïcødé ☃ 𝄞", "\x00nul", strings.Repeat("A", 10*1024), `CORP\alice`,
	}
	var groups []*config.Group
	for i, n := range hostile {
		groups = append(groups, grp(fmt.Sprint("g", i), n))
	}
	ctx := context.Background()
	if _, _, err := p.Observe(ctx, groups, hostile); err != nil {
		t.Fatal(err)
	}
	var changes []providers.MemberChange
	for _, n := range hostile {
		changes = append(changes, providers.MemberChange{Action: providers.Add, Member: providers.Member{ID: n}})
	}
	if _, err := p.Apply(ctx, []providers.GroupChange{{Group: grp("admins", "S-1-5-32-544"), Changes: changes}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.Observe(ctx, []*config.Group{grp("admins", "S-1-5-32-544")}, []string{"plain"}); err != nil {
		t.Fatal(err)
	}
	runs := h.RunsSeen()
	if len(runs) != 3 {
		t.Fatalf("runs = %d, want 3", len(runs))
	}
	for i, r := range runs {
		if r.CommandLine != CommandLine {
			t.Errorf("run %d: the command line changed with the data", i)
		}
		if r.Decoded != bootstrapPS {
			t.Errorf("run %d: the decoded -EncodedCommand is not the bootstrap: %q", i, r.Decoded)
		}
		if len(r.CommandLine) > 8191 {
			t.Errorf("run %d: command line of %d characters exceeds cmd.exe's 8,191", i, len(r.CommandLine))
		}
	}
	if runs[0].Script != ReadScript || runs[2].Script != ReadScript || runs[1].Script != ApplyScript {
		t.Error("the scripts sent are not the embedded constants")
	}
	// The data arrives exactly as sent.
	var got ReadRequest
	if err := json.Unmarshal([]byte(runs[0].Data), &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Principals, hostile) {
		t.Error("hostile principals did not arrive intact")
	}
	for i, g := range got.Groups {
		if g.Name != hostile[i] {
			t.Errorf("group %d name arrived as %q", i, g.Name)
		}
	}
	// Nothing but the real account was added: hostile "SIDs" are refused.
	if m := h.Members("S-1-5-32-544"); len(m) != 1 {
		t.Errorf("Administrators = %v, want only the built-in Administrator", m)
	}
}

// Hundreds of members: the data far exceeds what a command line can carry.
func TestLargeGroupTravelsOnStdin(t *testing.T) {
	s := winrmtest.New(t, user, pass, host("web01"))
	h := s.Host(host("web01"))
	var principals []string
	for i := 0; i < 600; i++ {
		sid := fmt.Sprintf("S-1-5-21-7-7-7-%d", 2000+i)
		h.Accounts[sid] = fmt.Sprintf(`CORP\user%03d`, i)
		h.Groups[1].Members = append(h.Groups[1].Members, sid)
		principals = append(principals, fmt.Sprintf(`CORP\user%03d`, i))
	}
	p := openHost(t, s, "web01", nil)
	obs, res, err := p.Observe(context.Background(), []*config.Group{grp("rdu", "S-1-5-32-555")}, principals)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(obs["group.rdu"].Members); n != 600 {
		t.Errorf("read %d members, want 600", n)
	}
	for _, p := range principals {
		if res[p].Err != nil {
			t.Fatalf("%s: %v", p, res[p].Err)
		}
	}
	r := h.RunsSeen()[0]
	if len(r.Data) < 8191 || len(r.CommandLine) > 8191 {
		t.Errorf("data %d bytes on stdin, command line %d characters", len(r.Data), len(r.CommandLine))
	}
}

func TestErrorsNameHostAndStepWithoutSecrets(t *testing.T) {
	s := winrmtest.New(t, user, pass, host("web01"), host("down"), host("drop"))
	s.Host(host("down")).Fail = true
	s.Host(host("drop")).Drop = true
	ctx := context.Background()
	cases := []struct {
		name, host string
		mod        func(*config.WinRMTarget)
		want       string
	}{
		{"wrong password", "web01", func(c *config.WinRMTarget) { c.Password = config.NewSecret("wrong-Pass-8812") }, "authentication failed"},
		{"untrusted certificate", "web01", func(c *config.WinRMTarget) { c.CAFile = "" }, "TLS verification failed"},
		{"server error", "down", nil, "read groups on down.winrm.test"},
		{"dropped connection", "drop", nil, "read groups on drop.winrm.test"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := openHost(t, s, tc.host, tc.mod)
			obs, err := p.Read(ctx, []*config.Group{grp("admins", "S-1-5-32-544")})
			if err != nil {
				t.Fatal(err)
			}
			e := obs["group.admins"].Err
			if e == nil || !strings.Contains(e.Error(), tc.want) {
				t.Fatalf("error = %v, want %q", e, tc.want)
			}
			if strings.Contains(e.Error(), pass) || strings.Contains(e.Error(), "wrong-Pass-8812") {
				t.Errorf("error leaks the password: %v", e)
			}
			outs, _ := p.Apply(ctx, []providers.GroupChange{{Group: grp("admins", "S-1-5-32-544"),
				Changes: []providers.MemberChange{{Action: providers.Add, Member: providers.Member{ID: "S-1-5-21-9-9-9-1104"}}}}})
			if outs[0].Status != providers.Failed {
				t.Errorf("apply on an unusable host = %s, want failed (the shell never opened)", outs[0].Status)
			}
		})
	}
}

// One slow host times out on its own; the others answer.
func TestSlowHostDoesNotBlockOthers(t *testing.T) {
	s := winrmtest.New(t, user, pass, host("web01"), host("web02"), host("slow"))
	s.Host(host("slow")).Latency = 3 * time.Second
	var wg sync.WaitGroup
	errs := map[string]error{}
	var mu sync.Mutex
	for _, n := range []string{"web01", "web02", "slow"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := openHost(t, s, n, func(c *config.WinRMTarget) { c.Timeout = time.Second })
			obs, _ := p.Read(context.Background(), []*config.Group{grp("admins", "S-1-5-32-544")})
			mu.Lock()
			errs[n] = obs["group.admins"].Err
			mu.Unlock()
		}()
	}
	wg.Wait()
	if errs["web01"] != nil || errs["web02"] != nil {
		t.Errorf("healthy hosts failed: %v / %v", errs["web01"], errs["web02"])
	}
	if errs["slow"] == nil {
		t.Error("the slow host must time out and say so")
	}
}

func FuzzEncodeRequest(f *testing.F) {
	for _, s := range []string{"CORP\\alice", "'; rm -rf /", "$(x)", "\n", "ü", "\x00", strings.Repeat("x", 9000)} {
		f.Add(s, s)
	}
	f.Fuzz(func(t *testing.T, group, principal string) {
		req := ReadRequest{Op: "read", Groups: []GroupRef{{Key: "group.g", Name: group}}, Principals: []string{principal}}
		stdin, err := EncodeStdin(ReadScript, req)
		if err != nil {
			t.Skip() // invalid UTF-8 is replaced by encoding/json, not an injection
		}
		script, data, err := DecodeStdin(stdin)
		if err != nil {
			t.Fatal(err)
		}
		if script != ReadScript {
			t.Fatal("the data changed the script")
		}
		var got ReadRequest
		if err := json.Unmarshal(data, &got); err != nil {
			t.Fatal(err)
		}
		if len(got.Groups) != 1 || len(got.Principals) != 1 {
			t.Fatal("the data changed shape")
		}
		// The console's code page passes ASCII only: stdin is ASCII, and
		// every value comes back exactly.
		for i := 0; i < len(stdin); i++ {
			if stdin[i] > 0x7E {
				t.Fatalf("stdin byte %#x at %d is not ASCII", stdin[i], i)
			}
		}
		if utf8.ValidString(group) && utf8.ValidString(principal) && (got.Groups[0].Name != group || got.Principals[0] != principal) {
			t.Fatalf("values changed: %q %q", got.Groups[0].Name, got.Principals[0])
		}
	})
}

// BenchmarkReadHosts plans N simulated hosts with 50 ms per request at a
// given parallelism, as `jitform plan --parallelism` does, and reports
// requests and shells per host.
func BenchmarkReadHosts(b *testing.B) {
	for _, n := range []int{10, 100, 500} {
		for _, par := range []int{10, 50} {
			b.Run(fmt.Sprintf("hosts=%d/parallelism=%d", n, par), func(b *testing.B) {
				names := make([]string, n)
				for i := range names {
					names[i] = host(fmt.Sprintf("h%03d", i))
				}
				s := winrmtest.New(b, user, pass, names...)
				for _, nm := range names {
					s.Host(nm).Latency = 50 * time.Millisecond
				}
				b.ResetTimer()
				for it := 0; it < b.N; it++ {
					sem := make(chan struct{}, par)
					var wg sync.WaitGroup
					for i := 0; i < n; i++ {
						wg.Add(1)
						sem <- struct{}{}
						go func(i int) {
							defer wg.Done()
							defer func() { <-sem }()
							p := openHost(b, s, fmt.Sprintf("h%03d", i), nil)
							obs, _, err := p.Observe(context.Background(), []*config.Group{grp("admins", "S-1-5-32-544")}, []string{`CORP\alice`})
							if err != nil || obs["group.admins"].Err != nil {
								b.Error(err, obs["group.admins"].Err)
							}
						}(i)
					}
					wg.Wait()
				}
				b.StopTimer()
				var reqs, shells int
				for _, nm := range names {
					r, sh := s.Host(nm).Stats()
					reqs, shells = reqs+r, shells+sh
				}
				b.ReportMetric(float64(reqs)/float64(n*b.N), "requests/host")
				b.ReportMetric(float64(shells)/float64(n*b.N), "shells/host")
			})
		}
	}
}

// NTLM: the real client's NTLMv2 handshake against a server that issues a
// challenge and checks the proof with the password; a wrong password fails
// and is never sent in the clear.
func TestNTLM(t *testing.T) {
	s := winrmtest.New(t, user, pass, host("web01"))
	ntlm := func(c *config.WinRMTarget) { c.Auth = config.WinRMAuthNTLM }
	p := openHost(t, s, "web01", ntlm)
	obs, res, err := p.Observe(context.Background(), []*config.Group{grp("admins", "S-1-5-32-544")}, []string{`CORP\alice`})
	if err != nil {
		t.Fatal(err)
	}
	if obs["group.admins"].Err != nil || res[`CORP\alice`].Err != nil {
		t.Fatalf("read over NTLM: %v / %v", obs["group.admins"].Err, res[`CORP\alice`].Err)
	}
	if s.NTLMLogins() == 0 {
		t.Fatal("the requests were not authenticated by NTLM")
	}
	bad := openHost(t, s, "web01", func(c *config.WinRMTarget) {
		ntlm(c)
		c.Password = config.NewSecret("wrong-Ntlm-5521")
	})
	o, err := bad.Read(context.Background(), []*config.Group{grp("admins", "S-1-5-32-544")})
	if err != nil {
		t.Fatal(err)
	}
	if e := o["group.admins"].Err; e == nil || !strings.Contains(e.Error(), "authentication failed") || strings.Contains(e.Error(), "wrong-Ntlm-5521") {
		t.Errorf("wrong NTLM password: error %v, want an authentication failure without the password", e)
	}
}

// When the host (or a proxy) closes the connection after its NTLM
// challenge, the last leg cannot succeed on another connection: the error
// says so, and does not blame the password.
func TestNTLMSplitHandshakeIsNotBlamedOnThePassword(t *testing.T) {
	s := winrmtest.New(t, user, pass, host("web01"))
	s.CloseAfterChallenge = true
	p := openHost(t, s, "web01", func(c *config.WinRMTarget) { c.Auth = config.WinRMAuthNTLM })
	obs, err := p.Read(context.Background(), []*config.Group{grp("admins", "S-1-5-32-544")})
	if err != nil {
		t.Fatal(err)
	}
	e := obs["group.admins"].Err
	if e == nil || !strings.Contains(e.Error(), "split across TCP connections") || strings.Contains(e.Error(), "check user") {
		t.Errorf("error = %v; want the split handshake named, not the password blamed", e)
	}
	if s.NTLMLogins() != 0 {
		t.Error("a login finished on another connection was accepted")
	}
}

// A host whose reply carries fewer results than the changes it was sent
// (a script that stopped early and still printed its JSON): each change
// with a result gets that result, and each change without one is unknown
// (it may have been made), never done and never a crash.
func TestChangeWithoutAResultIsUnknown(t *testing.T) {
	for _, short := range []int{1, 2} {
		t.Run(fmt.Sprintf("%d missing", short), func(t *testing.T) {
			s := winrmtest.New(t, user, pass, host("web01"))
			h := s.Host(host("web01"))
			h.ShortResults = short
			p := openHost(t, s, "web01", nil)
			outs := applyOne(t, p, grp("admins", adminSID),
				providers.MemberChange{Action: providers.Add, Member: alice},
				providers.MemberChange{Action: providers.Add, Member: bob})
			if len(outs) != 2 {
				t.Fatalf("%d outcomes, want 2", len(outs))
			}
			for i, o := range outs {
				want := providers.Done
				if i >= 2-short {
					want = providers.Unknown
				}
				if o.Status != want {
					t.Errorf("change %d (%s) = %s %v, want %s", i, o.Change.Member.Name, o.Status, o.Err, want)
				}
				if want == providers.Unknown && (o.Err == nil || !strings.Contains(o.Err.Error(), fmt.Sprintf("no result for change %d", i))) {
					t.Errorf("change %d: error %v, want it to say the host sent no result for it", i, o.Err)
				}
			}
		})
	}
}
