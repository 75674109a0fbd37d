package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/licensehub/licensehub/auth"
	"github.com/licensehub/licensehub/authority"
	"github.com/licensehub/licensehub/convert"
	"github.com/licensehub/licensehub/license"
	"github.com/licensehub/licensehub/signing"
)

// shippedConfigs is the repository's configs/ directory.
func shippedConfigs(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "configs"))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// hubEnv is the environment of a hub on the shipped configs with its data
// in dataDir.
func hubEnv(configs, dataDir string, extra ...string) []string {
	return append([]string{"HUB_SERVER_ADDR=127.0.0.1:0", "HUB_DATA_DIR=" + dataDir,
		"HUB_SIGNING_KEYS_DIR=" + filepath.Join(dataDir, "keys"), "HUB_AUDIT_JOURNAL_DIR=" + filepath.Join(dataDir, "audit"),
		"HUB_AUTH_MEMBERS_FILE=" + filepath.Join(configs, "members.yaml"), "HUB_CATALOG_DIR=" + filepath.Join(configs, "catalog"),
		"HUB_AUTHORITIES_FILE=" + filepath.Join(configs, "authorities.yaml"),
		"HUB_LOOKUP_MATTERS_FILE=" + filepath.Join(configs, "matters.yaml"), "HUB_CONVERSION_MAPPINGS_DIR=" + filepath.Join(configs, "conversion")},
		extra...)
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// The authorities of the cases: A and B registered, C not.
const (
	authA = "11430000006122244L"
	authB = "11430100MB1K32010B"
	authC = "91350100M000100Y43"
	hubA  = "11330100MB1234567E"
)

const testRegistry = `authorities:
  - {code: 11430000006122244L, name: 省局, area_code: "430000", level: provincial}
  - {code: 11430100MB1K32010B, name: 市局, area_code: "430100", level: city, parent: 11430000006122244L}
`

// TestCheckAuthorities: which mismatches between the authority registry,
// the member grants and the keyring stop the hub and which are warnings.
func TestCheckAuthorities(t *testing.T) {
	dir := t.TempDir()
	reg, err := authority.Load(writeFile(t, dir, "authorities.yaml", testRegistry))
	if err != nil {
		t.Fatal(err)
	}
	member := func(app, ops, authorities string) string {
		return "  - app_id: " + app + "\n    name: n\n    department: d\n    roles: [administrator]\n" +
			"    secret: secret-of-" + app + "-0123456789abcdefghij\n    grants:\n      - operations: [" + ops + "]\n" +
			"        authorities: [" + authorities + "]\n"
	}
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name               string
		members            string
		keys               []string // authorities with an active key
		problems, warnings []string // substrings, in order
	}{
		{"all consistent", member("app-a", "license.create", authA) + member("app-b", "conversion.run, license.read", authB),
			[]string{authA, authB, hubA}, nil, nil},
		{"push grant for an unlisted authority", member("app-c", "license.read, license.create", authC),
			[]string{authA, authB},
			[]string{"auth.members_file: member app-c, grants[0].authorities[0]: " + authC + " is not in " + reg.Path() + ", so license.create under this grant would always be refused"},
			nil},
		{"conversion grant for an unlisted authority", member("app-c", "conversion.run", authA+", "+authC),
			[]string{authA, authB},
			[]string{"member app-c, grants[0].authorities[1]: " + authC + " is not in " + reg.Path() + ", so conversion.run"},
			nil},
		{"read grant for an unlisted authority", member("app-r", "license.read, license.change", authC),
			[]string{authA, authB},
			nil,
			[]string{"auth.members_file: member app-r, grants[0].authorities[0]: " + authC + " is not in " + reg.Path() + "; fine for licenses it issued before or elsewhere"}},
		{"active key of an unlisted authority", member("app-a", "license.create", authA),
			[]string{authA, authB, authC, hubA},
			nil,
			[]string{"signing.keys_dir: key ", " is the active key of " + authC + ", which is not in " + reg.Path()}},
		{"listed authority without a key", member("app-a", "license.create", authA),
			[]string{authA},
			nil,
			[]string{"authorities.file: " + authB + " (市局) has no active signing key: its pushes are refused until it has one (hubctl keys gen --authority " + authB + ")"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			members, err := auth.LoadRegistry(writeFile(t, dir, "members.yaml", "members:\n"+tt.members))
			if err != nil {
				t.Fatal(err)
			}
			keys := filepath.Join(dir, "keys")
			for _, a := range tt.keys {
				if _, err := signing.Generate(keys, a, now.AddDate(-1, 0, 0), now.AddDate(1, 0, 0), nil); err != nil {
					t.Fatal(err)
				}
			}
			ring, err := signing.OpenKeyring(keys)
			if err != nil {
				t.Fatal(err)
			}
			problems, warnings := checkAuthorities(reg, members, ring, hubA, now)
			for _, c := range []struct {
				what      string
				got, want []string
			}{{"problems", problems, tt.problems}, {"warnings", warnings, tt.warnings}} {
				joined := strings.Join(c.got, "\n")
				if len(c.want) == 0 && len(c.got) > 0 {
					t.Errorf("%s:\n%s\nwant none", c.what, joined)
				}
				for _, w := range c.want {
					if !strings.Contains(joined, w) {
						t.Errorf("%s:\n%s\nwant %q", c.what, joined, w)
					}
				}
			}
		})
	}
}

// TestCheckMappingAuthorities: the shipped mappings name registered
// authorities by their names; a mapping that does not stops the hub.
func TestCheckMappingAuthorities(t *testing.T) {
	configs := shippedConfigs(t)
	reg, err := authority.Load(filepath.Join(configs, "authorities.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	mappings, err := convert.LoadMappings(filepath.Join(configs, "conversion"))
	if err != nil {
		t.Fatal(err)
	}
	if err := checkMappingAuthorities(reg, mappings); err != nil {
		t.Fatalf("shipped mappings: %v", err)
	}
	tests := []struct {
		name string
		edit func(m *convert.Mapping)
		want string
	}{
		{"unlisted authority", func(m *convert.Mapping) { m.Authority.Code = authC }, "authority.code " + authC + " is not in " + reg.Path()},
		{"other name", func(m *convert.Mapping) { m.Authority.Name = "湖南省工商局" }, `authority.name "湖南省工商局" is not the registered name of ` + authA},
		{"area outside", func(m *convert.Mapping) { m.AreaCode = "440100" }, "area_code 440100 is outside the area of"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := *mappings[demoMapping]
			tt.edit(&m)
			err := checkMappingAuthorities(reg, map[string]*convert.Mapping{demoMapping: &m})
			if err == nil || !strings.Contains(err.Error(), "conversion.mappings_dir") || !strings.Contains(err.Error(), demoMapping+": "+tt.want) {
				t.Errorf("got %v, want %q", err, tt.want)
			}
		})
	}
}

// A bad authority registry, or one that the member grants do not match,
// stops the hub before it listens: exit 2 naming the key and the problem.
func TestBadAuthoritiesExits2(t *testing.T) {
	configs := shippedConfigs(t)
	dir := t.TempDir()
	shipped, err := os.ReadFile(filepath.Join(configs, "authorities.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, file string
		want       []string
	}{
		{"bad area", writeFile(t, dir, "bad.yaml", strings.Replace(string(shipped), `area_code: "430100"`, `area_code: "43010"`, 1)),
			[]string{"authorities.file: ", "bad.yaml:", "authorities[1].area_code (11430100MB1K32010B)", "is not an area code"}},
		{"no file", filepath.Join(dir, "none.yaml"), []string{"authorities.file: authority registry " + filepath.Join(dir, "none.yaml") + " cannot be read: no such file"}},
		{"the demo issuer's authority missing", writeFile(t, dir, "city-only.yaml", "authorities:\n  - {code: 11430100MB1K32010B, name: 市局, area_code: \"430100\", level: city}\n"),
			[]string{"authorities.file: ", "member scjg-issuer, grants[0].authorities[0]: 11430000006122244L is not in", "license.create and conversion.run"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			data := t.TempDir()
			code := run(context.Background(), nil, hubEnv(configs, data, "HUB_AUTHORITIES_FILE="+tt.file, "HUB_LOG_LEVEL=error"), &stdout, &stderr)
			if code != 2 {
				t.Fatalf("exit %d, want 2; stderr %s", code, stderr.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr does not say %q:\n%s", w, stderr.String())
				}
			}
		})
	}
}

// TestDemoSecondDepartment starts the hub on the shipped configs in demo
// mode and runs its printed steps for the second issuing department as a
// user pastes them (hubctl built, curl): the food business permit is
// created, then found again, its issuer name taken from the registry,
// and GET /v1/authorities lists both demo authorities.
func TestDemoSecondDepartment(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash to paste the steps into")
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("no curl to paste the steps into")
	}
	bin := buildHub(t)
	hubctl := filepath.Join(t.TempDir(), "hubctl")
	if out, err := exec.Command("go", "build", "-o", hubctl, "../hubctl").CombinedOutput(); err != nil {
		t.Fatalf("go build hubctl: %v\n%s", err, out)
	}
	dataDir := t.TempDir()
	cmd := exec.Command(bin)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), hubEnv(shippedConfigs(t), dataDir)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderrPipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	steps := make(chan string, 1)
	go func() {
		var b strings.Builder
		buf := make([]byte, 4096)
		for !strings.Contains(b.String(), "Once-only:") { // the end of the steps this test needs
			n, err := stderrPipe.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		steps <- b.String()
		io.Copy(io.Discard, stderrPipe)
	}()
	_, logs := waitListening(t, stdout)
	go io.Copy(io.Discard, stdout)
	if !strings.Contains(logs, `"msg":"authority registry loaded"`) || strings.Contains(logs, `"level":"WARN","msg":"authorities.file`) {
		t.Errorf("the registry is not loaded cleanly:\n%s", logs)
	}

	var script []string
	for _, line := range strings.Split(<-steps, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "export HUBCTL_HUB="),
			strings.Contains(line, "HUBCTL_APP_ID="+demoFoodApp) && strings.Contains(line, "hubctl push"),
			strings.HasPrefix(line, "curl -s ") && strings.HasSuffix(line, "/v1/authorities      # the registered issuing authorities (public)"):
			script = append(script, strings.ReplaceAll(line, "go run ./cmd/hubctl", hubctl))
		}
	}
	if len(script) != 3 {
		t.Fatalf("the steps for the second department are not printed (found %q)", script)
	}
	// The push twice: created, then the same license again.
	script = slices.Insert(script, 2, script[1])
	sh := exec.Command("bash", "-e", "-c", strings.Join(script, "\n"))
	sh.Env = os.Environ()
	var out, errOut bytes.Buffer
	sh.Stdout, sh.Stderr = &out, &errOut
	if err := sh.Run(); err != nil {
		t.Fatalf("pasted steps failed: %v\n%s\nstderr:\n%s\nscript:\n%s", err, out.String(), errOut.String(), strings.Join(script, "\n"))
	}
	id := "1.2.156.3005.2." + demoFoodTypeCode + "." + demoFoodAuthority + ".JY24301040012345.001."
	for _, want := range []string{"created: /v1/licenses/" + id, "already there (identical earlier push): /v1/licenses/" + id} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("hubctl does not say %q:\n%s", want, errOut.String())
		}
	}
	for _, want := range []string{`"issuer":{"code":"` + demoFoodAuthority + `","name":"长沙市市场监督管理局（演示）"}`,
		`{"authorities":[{"code":"11430000006122244L","name":"湖南省市场监督管理局（演示）","area_code":"430000","level":"provincial"},` +
			`{"code":"11430100MB1K32010B","name":"长沙市市场监督管理局（演示）","area_code":"430100","level":"city","parent":"11430000006122244L"}]}`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the output does not hold %s:\n%s", want, out.String())
		}
	}
	raw, err := os.ReadFile(filepath.Join(dataDir, "demo", "food-permit-request.json"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), `"name": ""`) || !strings.Contains(string(raw), `"issuer": {`+"\n"+`    "code": "`+demoFoodAuthority+`"`+"\n  }") {
		t.Errorf("the demo request does not name its issuer by code alone:\n%s", raw)
	}
	var req license.PushRequest
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || req.TypeCode != demoFoodTypeCode || req.Issuer.Name != "" {
		t.Errorf("the demo request does not decode as a push: %v %+v", err, req)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
}
