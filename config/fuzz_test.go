package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad feeds arbitrary YAML to the loader: it must either load a
// configuration that passes Validate or return a *config.Error, never panic.
func FuzzLoad(f *testing.F) {
	shipped, err := os.ReadFile(filepath.Join("..", "configs", "hub.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(shipped)
	f.Add([]byte("server:\n  bogus: 1\n"))
	f.Add([]byte("server: [1, 2]\n"))
	f.Add([]byte("minio:\n  endpoint: http://h:9\n  timeout: -1s\n"))
	f.Add([]byte("&a [*a]"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, raw []byte) {
		path := filepath.Join(dir, "hub.yaml")
		if err := os.WriteFile(path, raw, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(path, nil)
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) || len(ce.Problems) == 0 {
				t.Fatalf("error is not a *config.Error with problems: %v", err)
			}
			return
		}
		if ps := cfg.Validate(); len(ps) > 0 {
			t.Fatalf("loaded a configuration that does not validate: %v", ps)
		}
	})
}

func FuzzParseByteSize(f *testing.F) {
	for _, s := range []string{"1MiB", "0", "512 KiB", "9223372036854775807", "-1", "1.5GB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseByteSize(s)
		if err != nil {
			return
		}
		if n < 0 {
			t.Fatalf("ParseByteSize(%q) = %d, negative", s, n)
		}
		if back, err := ParseByteSize(n.String()); err != nil || back != n {
			t.Fatalf("round trip of %q: %d -> %q -> %d, %v", s, n, n.String(), back, err)
		}
	})
}
