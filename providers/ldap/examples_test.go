package ldap

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/internal/testbed/sambatest"
	"github.com/jitform/jitform/internal/testbed/slapdtest"
	"github.com/jitform/jitform/providers"
)

// The example repositories are loaded as users would load them, pointed at
// a real server (only url and ca_file changed, as their READMEs say), and
// every principal, group and eligibility group they name must resolve and
// read, and their grants' adds must apply.
func TestExamples(t *testing.T) {
	for _, tc := range []struct {
		dir, envVar string
		server      func(t *testing.T, c *config.LDAPTarget) // starts a server, points c at it
		eligible    map[string]bool                          // principal -> in the policy's group:<DN>
	}{
		{
			dir: "openldap", envVar: "JITFORM_LDAP_PASSWORD",
			server: func(t *testing.T, c *config.LDAPTarget) {
				seed, err := os.ReadFile(filepath.Join("..", "..", "examples", "openldap", "seed.ldif"))
				if err != nil {
					t.Fatal(err)
				}
				s := slapdtest.Start(t, string(seed))
				c.URL, c.CAFile = s.URL, s.CAFile
			},
			eligible: map[string]bool{"erin": true, "alice": false},
		},
		{
			dir: "active-directory", envVar: "JITFORM_CORP_PASSWORD",
			server: func(t *testing.T, c *config.LDAPTarget) {
				dc := sambatest.Start(t)
				// The seed has no svc-jitform account: bind as Administrator.
				c.URL, c.CAFile, c.BindDN = dc.LDAPSURL, dc.CAFile, sambatest.AdminUPN
			},
			eligible: map[string]bool{"carol": true, "alice": false},
		},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			pw := slapdtest.RootPW
			if tc.dir == "active-directory" {
				pw = sambatest.AdminPassword
			}
			t.Setenv(tc.envVar, pw)
			cfg, diags := config.Load(filepath.Join("..", "..", "examples", tc.dir), config.LoadOptions{PlanTime: time.Now()})
			if diags.HasErrors() {
				t.Fatal(diags.Error())
			}
			if len(cfg.Targets) != 1 || cfg.Targets[0].LDAP == nil {
				t.Fatalf("want one ldap target, got %d", len(cfg.Targets))
			}
			tg := cfg.Targets[0]
			tc.server(t, tg.LDAP)
			ctx := context.Background()
			p, err := Open(ctx, tg, providers.Options{BaseDir: cfg.Dir})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()

			var principals, dirGroups []string
			for _, g := range cfg.Groups {
				principals = append(principals, g.Members...)
			}
			for _, pol := range cfg.Policies {
				for _, e := range pol.Eligible {
					if d, ok := strings.CutPrefix(e, "group:"); ok {
						dirGroups = append(dirGroups, d)
					} else {
						principals = append(principals, e)
					}
				}
			}
			for _, gr := range cfg.Grants {
				principals = append(principals, gr.Principal)
			}
			slices.Sort(principals)
			principals = slices.Compact(principals)
			before := p.(Counter).Ops()
			res, err := p.Resolve(ctx, principals)
			if err != nil {
				t.Fatal(err)
			}
			// config.Load fills in the flavor's default user_filter; that
			// must still be one batched search, not one per principal.
			if ops := p.(Counter).Ops() - before; ops != 1 {
				t.Errorf("resolving %d principals took %d round trips, want 1", len(principals), ops)
			}
			for _, pr := range principals {
				if res[pr].Err != nil {
					t.Errorf("principal %q: %v", pr, res[pr].Err)
				}
			}
			obs, err := p.Read(ctx, cfg.Groups)
			if err != nil {
				t.Fatal(err)
			}
			for _, g := range cfg.Groups {
				if obs[g.Addr].Err != nil {
					t.Errorf("%s: %v", g.Addr, obs[g.Addr].Err)
				}
			}
			ec := p.(providers.EligibilityChecker)
			for who, want := range tc.eligible {
				in, err := ec.InGroups(ctx, who, dirGroups)
				if err != nil {
					t.Fatal(err)
				}
				for _, d := range dirGroups {
					if in[d] != want {
						t.Errorf("%s in %s = %v, want %v", who, d, in[d], want)
					}
				}
			}

			// Apply each grant's add to the policy's groups.
			var changes []providers.GroupChange
			for _, gr := range cfg.Grants {
				pol := cfg.PolicyByAddr(gr.Policy)
				for _, g := range cfg.Groups {
					if slices.Contains(pol.Sets(), g.BaseAddr) {
						changes = append(changes, providers.GroupChange{Group: g, Changes: []providers.MemberChange{{Action: providers.Add, Member: res[gr.Principal].Member}}})
					}
				}
			}
			outs, err := p.Apply(ctx, changes)
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range outs {
				if !o.Status.OK() {
					t.Errorf("add %s to %s: %s %v", o.Change.Member.ID, o.Group, o.Status, o.Err)
				}
			}
			after, err := p.Read(ctx, cfg.Groups)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range changes {
				if !slices.Contains(ids(after[c.Group.Addr].Members), c.Changes[0].Member.ID) {
					t.Errorf("%s lacks %s after apply", c.Group.Addr, c.Changes[0].Member.ID)
				}
			}

			// Every account reads as an existing, disabled account, and a
			// granted one enables with a fresh password and binds with it.
			if len(cfg.Accounts) > 0 {
				am := p.(providers.AccountManager)
				st, err := am.ReadAccounts(ctx, cfg.Accounts)
				if err != nil {
					t.Fatal(err)
				}
				for _, a := range cfg.Accounts {
					const pw = "Example-Enable-7!Kq"
					change := providers.AccountChange{Account: a, Enable: true, Password: config.NewSecret(pw)}
					bindDN := a.DN
					switch s := st[a.Addr]; {
					case a.Ephemeral && (s.Err != nil || !s.Exists || len(s.Instances) != 0):
						t.Errorf("%s reads %+v, want its base and no accounts", a.Addr, s)
						continue
					case a.Ephemeral:
						// Ephemeral: the account a grant would get.
						name, err := a.InstanceName("alice", "g-example123")
						if err != nil {
							t.Fatal(err)
						}
						bindDN = a.InstanceDN(name)
						change.Create, change.Instance = true, &providers.Instance{Name: name, DN: bindDN, Grant: "g-example123"}
					case s.Err != nil || !s.Exists || s.Enabled:
						t.Errorf("%s reads %+v, want an existing disabled account", a.Addr, s)
						continue
					}
					outs, _ := am.SetAccounts(ctx, []providers.AccountChange{change})
					if outs[0].Status != providers.Done {
						t.Errorf("enable %s: %s %v", a.Addr, outs[0].Status, outs[0].Err)
						continue
					}
					bt := *tg
					lc := *tg.LDAP
					lc.BindDN, lc.Password = bindDN, config.NewSecret(pw)
					bt.LDAP = &lc
					bp, err := Open(ctx, &bt, providers.Options{})
					if err != nil {
						t.Errorf("%s does not bind with its new password: %v", a.Addr, err)
						continue
					}
					bp.Close()
				}
			}
		})
	}
}
