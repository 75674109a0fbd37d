package auth

import (
	"errors"
	"strings"
	"testing"

	"github.com/licensehub/licensehub"
)

// FuzzParseRegistry feeds arbitrary YAML to the registry parser: it never
// panics, and refuses only with EINVALID problems that name the file.
func FuzzParseRegistry(f *testing.F) {
	f.Add([]byte("members:\n  - app_id: a-1\n    name: N\n    department: D\n    roles: [approval_system]\n    secret: demo:a-1\n    grants:\n      - operations: [license.read]\n"))
	f.Add([]byte("members:\n  - app_id: a-1\n    secret: env:X\n    rate_limit: {requests: x, per: 1s}\n    colour: blue\n"))
	f.Add([]byte("members: &m\n  - *m\n"))
	f.Add([]byte("members:\n  - app_id: [\n"))
	f.Add([]byte("---\n---\n"))
	f.Add([]byte("members:\n  -")) // once accepted as an empty registry
	f.Add([]byte("members:\n  - grants: [{operations: [keys.admin], license_types: [\"x\"], authorities: [1], matters: [\"\"]}]\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		o := &loadOptions{allowDemo: true, lookupEnv: func(string) (string, bool) { return strings.Repeat("s", 40), true }}
		reg, err := parseRegistry("members.yaml", raw, 0o644, o)
		if err == nil {
			if len(reg.Members()) == 0 {
				t.Fatal("accepted a registry without members")
			}
			return
		}
		var e *licensehub.Error
		if !errors.As(err, &e) || e.Code != licensehub.EINVALID || !strings.Contains(e.Message, "members.yaml") {
			t.Fatalf("refused with %v", err)
		}
	})
}
