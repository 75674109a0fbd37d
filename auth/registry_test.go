package auth_test

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm3"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/auth"
)

// member renders one members: entry. Each override is a whole field
// ("secret: env:X", or several lines such as "grants:\n      - ...") that
// replaces the default field with the same key in place, or is appended
// when there is no such default.
func member(appID string, overrides ...string) string {
	fields := []string{
		"app_id: " + appID,
		"name: Test system",
		"department: Test department",
		"roles: [approval_system]",
		"secret: env:T_SECRET",
		"grants:\n      - operations: [license.read]",
	}
	key := func(f string) string { k, _, _ := strings.Cut(f, ":"); return strings.TrimSpace(k) }
	for _, o := range overrides {
		o = strings.TrimLeft(o, " ")
		i := slices.IndexFunc(fields, func(f string) bool { return key(f) == key(o) })
		if i < 0 {
			fields = append(fields, o)
		} else {
			fields[i] = o
		}
	}
	return "  - " + strings.Join(fields, "\n    ") + "\n"
}

var loaderEnv = env{
	"T_SECRET":  secret1,
	"T_SECRET2": secret2,
	"T_SHORT":   "too-short",
	"T_EMPTY":   "",
	"T_SPACE":   secret1 + "\n",
	"HUB_X":     secret1,
}

func TestLoadRegistryRefusals(t *testing.T) {
	tests := []struct {
		name    string
		content string
		perm    os.FileMode // 0 means 0644
		opts    []auth.LoadOption
		at      string // the message names the line of the first occurrence of at ("" : no line)
		field   string // the Error's Field
		want    string // in the message
	}{
		{"unknown member key", "members:\n" + member("a-1", "colour: blue"), 0, nil,
			"colour", "members[0].colour", "colour is not a member field"},
		{"unknown grant key", "members:\n" + member("a-1", "grants:\n      - operations: [license.read]\n        types: [x]"), 0, nil,
			"types", "members[0].grants[0].types", "types is not a grant field"},
		{"unknown top-level key", "version: 1\nmembers:\n" + member("a-1"), 0, nil,
			"version", "version", "version is not a registry field"},
		{"wrong type", "members:\n" + member("a-1", "rate_limit: {requests: many, per: 1s}"), 0, nil,
			"rate_limit", "members[0].rate_limit.requests", "want an integer"},
		{"YAML syntax", "members:\n  - app_id: [\n", 0, nil, "", "", "members.yaml"},
		{"empty file", "\n", 0, nil, "", "", "empty"},
		{"no members", "members: []\n", 0, nil, "members", "", "members: missing or empty"},
		{"empty member item", "members:\n  -\n", 0, nil, "-", "members[0]", "want a mapping"},
		{"member is a string", "members:\n  - scjg-approval\n", 0, nil, "scjg-approval", "members[0]", "want a mapping"},
		{"two documents", "members:\n" + member("a-1") + "---\nmembers: []\n", 0, nil, "", "", "more than one YAML document"},
		{"duplicate app_id", "members:\n" + member("a-1") + member("a-1", "name: Second"), 0, nil,
			"app_id: a-1\n    name: Second", "members[1].app_id", "a-1 is already the app_id of members[0] (line 2)"},
		{"bad app_id", "members:\n" + member("Scjg_Approval"), 0, nil,
			"app_id", "members[0].app_id", "3 to 64 characters"},
		{"missing app_id", "members:\n" + member(`""`), 0, nil,
			"app_id", "members[0].app_id", "missing"},
		{"missing name", "members:\n" + member("a-1", `name: ""`), 0, nil,
			"name", "members[0].name", "missing"},
		{"missing department", "members:\n" + member("a-1", `department: " "`), 0, nil,
			"department", "members[0].department", "missing"},
		{"bad role", "members:\n" + member("a-1", "roles:\n      - approval_system\n      - superuser"), 0, nil,
			"superuser", "members[0].roles[1]", `"superuser" is not a role`},
		{"no roles", "members:\n" + member("a-1", "roles: []"), 0, nil,
			"roles", "members[0].roles", "at least one"},
		{"repeated role", "members:\n" + member("a-1", "roles: [supervisor, supervisor]", "grants: []"), 0, nil,
			"roles", "members[0].roles[1]", "listed twice"},
		{"grant exceeding the role", "members:\n" + member("a-1", "grants:\n      - operations: [license.read, license.create]"), 0, nil,
			"operations", "members[0].grants[0].operations[1]", "license.create exceeds the member's roles [approval_system]"},
		{"unknown operation", "members:\n" + member("a-1", "grants:\n      - operations: [license.delete]"), 0, nil,
			"operations", "members[0].grants[0].operations[0]", `"license.delete" is not an operation`},
		{"grant without operations", "members:\n" + member("a-1", "grants:\n      - matters: [x-1]"), 0, nil,
			"- matters", "members[0].grants[0].operations", "at least one operation"},
		{"bad license type", "members:\n" + member("a-1", "grants:\n      - operations: [license.read]\n        license_types: [\"11100000000013338X011\"]"), 0, nil,
			"license_types", "members[0].grants[0].license_types[0]", "not a license type code"},
		{"bad authority", "members:\n" + member("a-1", "grants:\n      - operations: [license.read]\n        authorities: [\"11430000006122244X\"]"), 0, nil,
			"authorities", "members[0].grants[0].authorities[0]", "not a unified social credit code"},
		{"bad matter", "members:\n" + member("a-1", "grants:\n      - operations: [license.read]\n        matters: [\"a b\"]"), 0, nil,
			"matters", "members[0].grants[0].matters[0]", "not a service matter code"},
		{"missing secret", "members:\n" + member("a-1", `secret: ""`), 0, nil,
			"secret", "members[0].secret", "missing"},
		{"short secret", "members:\n" + member("a-1", "secret: env:T_SHORT"), 0, nil,
			"secret", "members[0].secret", "environment variable T_SHORT is 9 bytes; a secret needs at least 32"},
		{"short literal", "members:\n" + member("a-1", "secret: short-literal"), 0o600, nil,
			"secret", "members[0].secret", "the literal secret is 13 bytes"},
		{"missing env", "members:\n" + member("scjg-approval", "secret: env:LH_SECRET_SCJG"), 0, nil,
			"secret", "members[0].secret", "members[0].secret (scjg-approval): environment variable LH_SECRET_SCJG is not set"},
		{"empty env", "members:\n" + member("a-1", "secret: env:T_EMPTY"), 0, nil,
			"secret", "members[0].secret", "environment variable T_EMPTY is empty"},
		{"HUB_ env", "members:\n" + member("a-1", "secret: env:HUB_X"), 0, nil,
			"secret", "members[0].secret", "HUB_* variables configure the hub"},
		{"bad env name", "members:\n" + member("a-1", "secret: env:1-X"), 0, nil,
			"secret", "members[0].secret", "not an environment variable name"},
		{"secret with a newline", "members:\n" + member("a-1", "secret: env:T_SPACE"), 0, nil,
			"secret", "members[0].secret", "trailing white space"},
		{"upper-case reference", "members:\n" + member("a-1", "secret: ENV:T_SECRET_SOMETHING_LONGER_THAN_32"), 0o600, nil,
			"secret", "members[0].secret", "references are written in lower case"},
		{"literal secret in a 0644 file", "members:\n" + member("a-1", "secret: a-literal-secret-0123456789abcdef-0123"), 0o644, nil,
			"secret", "members[0].secret", "mode 0644; chmod 600"},
		{"literal secret in a 0640 file", "members:\n" + member("a-1", "secret: a-literal-secret-0123456789abcdef-0123"), 0o640, nil,
			"secret", "members[0].secret", "mode 0640"},
		{"demo secret outside demo mode", "members:\n" + member("a-1", "secret: demo:a-1"), 0, nil,
			"secret", "members[0].secret", "accepted only in demo mode"},
		{"bad demo label", "members:\n" + member("a-1", "secret: demo:a b"), 0, []auth.LoadOption{auth.AllowDemoSecrets()},
			"secret", "members[0].secret", "the label must be"},
		{"next_secret equal to secret", "members:\n" + member("a-1", "next_secret: env:T_SECRET"), 0, nil,
			"next_secret", "members[0].next_secret", "same as secret"},
		{"short next_secret", "members:\n" + member("a-1", "next_secret: env:T_SHORT"), 0, nil,
			"next_secret", "members[0].next_secret", "T_SHORT is 9 bytes"},
		{"rate limit zero", "members:\n" + member("a-1", "rate_limit: {requests: 0, per: 1s}"), 0, nil,
			"rate_limit", "members[0].rate_limit.requests", "outside 1..1000000"},
		{"rate limit period fractional", "members:\n" + member("a-1", "rate_limit:\n      requests: 5\n      per: 1500ms"), 0, nil,
			"per:", "members[0].rate_limit.per", "whole number of seconds"},
		{"rate limit period missing", "members:\n" + member("a-1", "rate_limit: {requests: 5}"), 0, nil,
			"rate_limit", "members[0].rate_limit.per", "missing"},
		{"rate limit period not a duration", "members:\n" + member("a-1", "rate_limit: {requests: 5, per: second}"), 0, nil,
			"rate_limit", "members[0].rate_limit.per", "not a duration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.perm != 0 && runtime.GOOS == "windows" {
				t.Skip("file modes")
			}
			perm := tt.perm
			if perm == 0 {
				perm = 0o644
			}
			path := writeFile(t, tt.content, perm)
			_, err := auth.LoadRegistry(path, append(tt.opts, auth.WithLookupEnv(loaderEnv.lookup))...)
			if err == nil {
				t.Fatalf("accepted:\n%s", tt.content)
			}
			e := codeOf(t, err)
			if e.Code != licensehub.EINVALID {
				t.Errorf("code %s, want %s", e.Code, licensehub.EINVALID)
			}
			msg := e.Error()
			if !strings.Contains(msg, tt.want) {
				t.Errorf("message does not say %q:\n%s", tt.want, msg)
			}
			if line := lineOf(tt.content, tt.at); tt.at != "" && !strings.Contains(msg, fmt.Sprintf("%s:%d: ", path, line)) {
				t.Errorf("message does not name %s:%d:\n%s\ncontent:\n%s", path, line, msg, numbered(tt.content))
			}
			if !strings.Contains(msg, path) {
				t.Errorf("message does not name the file:\n%s", msg)
			}
			if tt.field != "" {
				if e.Field != tt.field || !strings.Contains(msg, tt.field) {
					t.Errorf("field %q, want %q (named in the message):\n%s", e.Field, tt.field, msg)
				}
			}
			for _, s := range []string{secret1, secret2, "a-literal-secret-0123456789abcdef-0123", "too-short"} {
				if strings.Contains(msg, s) {
					t.Errorf("the message shows a secret: %s", msg)
				}
			}
		})
	}
}

// lineOf is the 1-based line of the first occurrence of sub in s.
func lineOf(s, sub string) int {
	i := strings.Index(s, sub)
	if i < 0 {
		panic("test content lacks " + sub)
	}
	return strings.Count(s[:i], "\n") + 1
}

func numbered(s string) string {
	var b strings.Builder
	for i, l := range strings.Split(s, "\n") {
		fmt.Fprintf(&b, "%3d %s\n", i+1, l)
	}
	return b.String()
}

// TestLoadRegistryReportsEveryProblem: one load lists all of them.
func TestLoadRegistryReportsEveryProblem(t *testing.T) {
	content := "members:\n" + member("a-1", "roles: [wizard]") + member("a-2", "secret: env:NOPE")
	_, err := auth.LoadRegistry(writeFile(t, content, 0o644), auth.WithLookupEnv(loaderEnv.lookup))
	e := codeOf(t, err)
	problems, _ := e.Details["problems"].([]string)
	if len(problems) != 2 || !strings.Contains(e.Message, "2 problems") {
		t.Fatalf("want 2 problems, got %v:\n%s", problems, e.Message)
	}
	for _, p := range problems {
		if !regexp.MustCompile(`members\.yaml:\d+: members\[\d\][.a-z\[\]0-9_]* \(a-\d\): `).MatchString(p) {
			t.Errorf("problem %q does not name file:line and member", p)
		}
	}
}

func TestLoadRegistryFileProblems(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("file modes")
	}
	t.Run("missing file", func(t *testing.T) {
		_, err := auth.LoadRegistry(filepath.Join(t.TempDir(), "nope.yaml"))
		if e := codeOf(t, err); e.Code != licensehub.EINVALID || !strings.Contains(e.Message, "nope.yaml") {
			t.Errorf("got %v", err)
		}
	})
	t.Run("a directory", func(t *testing.T) {
		_, err := auth.LoadRegistry(t.TempDir())
		if e := codeOf(t, err); e.Code != licensehub.EINVALID || !strings.Contains(e.Message, "not a regular file") {
			t.Errorf("got %v", err)
		}
	})
	t.Run("world-writable", func(t *testing.T) {
		path := writeFile(t, "members:\n"+member("a-1"), 0o666)
		_, err := auth.LoadRegistry(path, auth.WithLookupEnv(loaderEnv.lookup))
		if e := codeOf(t, err); e.Code != licensehub.EINVALID || !strings.Contains(e.Message, "writable by others") {
			t.Errorf("got %v", err)
		}
	})
}

func TestLoadRegistryAccepts(t *testing.T) {
	full := `# comment
members:
  - app_id: scjg-approval            # [a-z0-9-]{3,64}, unique
    name: 市场监管审批系统
    department: 市场监督管理局
    roles: [approval_system]
    secret: env:T_SECRET
    next_secret: env:T_SECRET2
    grants:
      - operations: [license.read, license.lookup]
        license_types: ["` + typeA + `"]
        authorities: []
        matters: ["` + matterA + `"]
    rate_limit: {requests: 50, per: 1s}
`
	tests := []struct {
		name    string
		content string
		perm    os.FileMode
		opts    []auth.LoadOption
		check   func(t *testing.T, reg *auth.Registry)
	}{
		{"the format of the issue", full, 0o644, nil, func(t *testing.T, reg *auth.Registry) {
			m, ok := reg.Member("scjg-approval")
			if !ok || m.Name() != "市场监管审批系统" || m.Department() != "市场监督管理局" ||
				m.RateLimit() != (auth.RateLimit{Requests: 50, Per: time.Second}) {
				t.Errorf("member %v %+v", m, m.RateLimit())
			}
			g := m.Grants()
			if len(g) != 1 || len(g[0].Operations) != 2 || g[0].LicenseTypes[0] != typeA || len(g[0].Authorities) != 0 || g[0].Matters[0] != matterA {
				t.Errorf("grants %+v", g)
			}
		}},
		{"literal secret in a 0600 file", "members:\n" + member("a-1", "secret: a-literal-secret-0123456789abcdef-0123"), 0o600, nil, nil},
		{"demo secret in demo mode", "members:\n" + member("a-1", "secret: demo:a-1"), 0o644, []auth.LoadOption{auth.AllowDemoSecrets()}, nil},
		{"no grants", "members:\n" + member("a-1", "grants: []"), 0o644, nil, nil},
		{"several roles widen what grants may list", "members:\n" + member("a-1",
			"roles: [approval_system, supervisor]",
			"grants:\n      - operations: [license.lookup, audit.read]"), 0o644, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.perm == 0o600 && runtime.GOOS == "windows" {
				t.Skip("file modes")
			}
			reg, err := auth.LoadRegistry(writeFile(t, tt.content, tt.perm), append(tt.opts, auth.WithLookupEnv(loaderEnv.lookup))...)
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if tt.check != nil {
				tt.check(t, reg)
			}
		})
	}
}

// TestDemoRegistry loads the shipped configs/members.yaml.
func TestDemoRegistry(t *testing.T) {
	const path = "../configs/members.yaml"
	reg, err := auth.LoadRegistry(path, auth.AllowDemoSecrets())
	if err != nil {
		t.Fatalf("the demo registry does not load: %v", err)
	}
	for _, r := range auth.Roles() {
		n := 0
		for _, m := range reg.Members() {
			if m.HasRole(r) {
				n++
			}
		}
		want := 1
		if r == auth.RoleIssuingDepartment {
			want = 2 // the business license and the food business permit systems
		}
		if n != want {
			t.Errorf("%d demo members with role %s, want %d", n, r, want)
		}
	}
	food, ok := reg.Member("csscjg-food-issuer")
	if !ok {
		t.Fatal("no csscjg-food-issuer")
	}
	if err := food.Authorize(auth.OpLicenseCreate, auth.Resource{LicenseType: "11100000000013338W024", Authority: "11430100MB1K32010B"}); err != nil {
		t.Errorf("the demo food issuer cannot issue its food business permits: %v", err)
	}
	if err := food.Authorize(auth.OpLicenseCreate, auth.Resource{LicenseType: "11100000000013338W011", Authority: "11430100MB1K32010B"}); err == nil {
		t.Error("the demo food issuer may issue business licenses")
	}
	issuer, ok := reg.Member("scjg-issuer")
	if !ok {
		t.Fatal("no scjg-issuer")
	}
	if err := issuer.Authorize(auth.OpLicenseCreate, auth.Resource{LicenseType: "11100000000013338W011", Authority: "11430000006122244L"}); err != nil {
		t.Errorf("the demo issuer cannot issue its business licenses: %v", err)
	}
	admin, _ := reg.Member("hub-admin")
	for _, op := range auth.Operations() {
		if err := admin.Authorize(op, auth.Resource{}); err != nil {
			t.Errorf("the demo administrator cannot %s: %v", op, err)
		}
	}

	_, err = auth.LoadRegistry(path)
	if e := codeOf(t, err); e.Code != licensehub.EINVALID || !strings.Contains(e.Message, "demo mode") {
		t.Errorf("outside demo mode: %v", err)
	}
}

func TestDemoSecret(t *testing.T) {
	sum := sm3.Sum([]byte("licensehub demo secret scjg-issuer"))
	if got := string(auth.DemoSecret("scjg-issuer")); got != hex.EncodeToString(sum[:]) || len(got) != 64 {
		t.Errorf("DemoSecret = %s", got)
	}
}

// TestNothingPrintsSecrets formats the registry and its members every way
// a log line might.
func TestNothingPrintsSecrets(t *testing.T) {
	e := env{"A": secret1, "B": secret2}
	content := "members:\n" + member("a-1", "secret: env:A", "next_secret: env:B")
	reg := loadRegistry(t, content, e)
	m, _ := reg.Member("a-1")
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("x", "member", m, "registry", reg)
	outs := []string{logged.String()}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%d", "%x", "%q"} {
		outs = append(outs, fmt.Sprintf(verb, m), fmt.Sprintf(verb, reg), fmt.Sprintf(verb, *m))
	}
	for _, out := range outs {
		for _, s := range []string{secret1, secret2, hex.EncodeToString([]byte(secret1)), strings.Trim(fmt.Sprint([]byte(secret1)), "[]")} {
			if strings.Contains(out, s) {
				t.Errorf("output shows a secret: %s", out)
			}
		}
	}
	if !strings.Contains(logged.String(), `"app_id":"a-1"`) {
		t.Errorf("slog output %s lacks the app ID", logged.String())
	}
}
