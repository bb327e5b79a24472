package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const stateMinimal = `
target "ldif" "export" {
  path = "directory.ldif"
}
`

// TestStateBlock covers the state block's rules, through both LoadState
// (what commands use to open the state) and the full Load (validate):
// each case must give the same verdict, naming file:line and the field.
func TestStateBlock(t *testing.T) {
	const secretURL = "postgres://jitform:Hunter2-state-pw@db.example/jitform"
	env := map[string]string{"JITFORM_STATE_URL": secretURL}
	for _, tc := range []struct {
		name    string
		src     string
		wantErr string // substring of the diagnostics; "" for none
		at      string // "state.hcl:LINE" of the error
		check   func(t *testing.T, st *State)
	}{
		{name: "no state block means local files", src: ``, check: func(t *testing.T, st *State) {
			if st != nil {
				t.Fatalf("state = %+v, want nil", st)
			}
		}},
		{name: "url from env, default schema", src: `state "postgres" {
  url = env("JITFORM_STATE_URL")
}`, check: func(t *testing.T, st *State) {
			if st == nil || st.Kind != "postgres" || st.Postgres == nil {
				t.Fatalf("state = %+v", st)
			}
			if st.Postgres.URL.Reveal() != secretURL || st.Postgres.Schema != "jitform" || st.Postgres.CAFile != "" {
				t.Fatalf("postgres = %+v", st.Postgres)
			}
		}},
		{name: "schema and ca_file relative to the repo", src: `state "postgres" {
  url     = env("JITFORM_STATE_URL")
  schema  = "jit_prod"
  ca_file = "ca.pem"
}`, check: func(t *testing.T, st *State) {
			if st.Postgres.Schema != "jit_prod" || filepath.Base(st.Postgres.CAFile) != "ca.pem" || !filepath.IsAbs(st.Postgres.CAFile) && !strings.Contains(st.Postgres.CAFile, string(filepath.Separator)) {
				t.Fatalf("postgres = %+v", st.Postgres)
			}
		}},
		{name: "missing url", src: `state "postgres" {
  schema = "jitform"
}`, wantErr: `Missing required argument`, at: "state.hcl:1"},
		// The url's env() is read when the state is opened, not at load:
		// then the error names the variable.
		{name: "unset env names the variable, not a value", src: `state "postgres" {
  url = env("JITFORM_NOT_SET_ANYWHERE")
}`, check: func(t *testing.T, st *State) {
			if _, err := st.Postgres.URL.Value(); err == nil || !strings.Contains(err.Error(), "JITFORM_NOT_SET_ANYWHERE is not set") {
				t.Errorf("URL.Value() = %v, want the variable named", err)
			}
		}},
		{name: "empty url", src: `state "postgres" {
  url = ""
}`, wantErr: "Empty state url", at: "state.hcl:2"},
		{name: "bad schema", src: `state "postgres" {
  url    = env("JITFORM_STATE_URL")
  schema = "Robert'); DROP TABLE"
}`, wantErr: "Invalid schema name", at: "state.hcl:3"},
		{name: "secret in the wrong attribute is refused", src: `state "postgres" {
  url    = env("JITFORM_STATE_URL")
  schema = env("JITFORM_STATE_URL")
}`, wantErr: "env() value outside a password; schema gets its value from env()", at: "state.hcl:3"},
		{name: "missing ca_file", src: `state "postgres" {
  url     = env("JITFORM_STATE_URL")
  ca_file = "nope.pem"
}`, wantErr: "Cannot read ca_file", at: "state.hcl:3"},
		{name: "unknown kind", src: `state "postgress" {
  url = env("JITFORM_STATE_URL")
}`, wantErr: `did you mean "postgres"`, at: "state.hcl:1"},
		{name: "duplicate", src: `state "postgres" {
  url = env("JITFORM_STATE_URL")
}
state "postgres" {
  url = env("JITFORM_STATE_URL")
}`, wantErr: "Duplicate state block", at: "state.hcl:4"},
		{name: "unknown attribute", src: `state "postgres" {
  url      = env("JITFORM_STATE_URL")
  password = env("JITFORM_STATE_URL")
}`, wantErr: "Unsupported argument", at: "state.hcl:3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			write := func(name, src string) {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			write("main.hcl", stateMinimal)
			write("directory.ldif", "")
			write("ca.pem", "pem")
			write("state.hcl", tc.src)
			opts := LoadOptions{LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
			st, diags := LoadState(dir, opts)
			_, full := Load(dir, opts)
			for name, d := range map[string]string{"LoadState": diags.Error(), "Load": full.Error()} {
				if strings.Contains(d, "Hunter2-state-pw") {
					t.Errorf("%s: the url's password is in the diagnostics: %s", name, d)
				}
				if tc.wantErr == "" {
					if d != "" && d != "no diagnostics" {
						t.Errorf("%s: unexpected diagnostics: %s", name, d)
					}
					continue
				}
				if !strings.Contains(d, tc.wantErr) || !strings.Contains(d, tc.at) {
					t.Errorf("%s: diagnostics %q, want %q at %s", name, d, tc.wantErr, tc.at)
				}
			}
			if tc.check != nil {
				tc.check(t, st)
			}
		})
	}
}
