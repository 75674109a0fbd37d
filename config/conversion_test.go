package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestConversionDefaults(t *testing.T) {
	c := Default().Conversion
	want := Conversion{MappingsDir: "configs/conversion", Workers: 16, CheckpointRows: 1000,
		CheckpointEvery: Duration(2 * time.Second), LeaseTTL: Duration(30 * time.Second), Poll: Duration(2 * time.Second),
		MaxUpload: 2 << 30, XLSXMaxUnzipped: 1 << 30}
	if c != want {
		t.Errorf("conversion defaults %+v, want %+v", c, want)
	}
	if got := c.MaxUpload.String(); got != "2GiB" {
		t.Errorf("max_upload prints %q, want 2GiB", got)
	}
}

func TestConversionProblemsNameTheKey(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		env     []string
		wantKey string
		wantMsg string
	}{
		{"empty mappings dir", "conversion:\n  mappings_dir: ' '\n", nil, "conversion.mappings_dir", "required"},
		{"no workers", "conversion:\n  workers: 0\n", nil, "conversion.workers", "1..1024"},
		{"too many workers", "", []string{"HUB_CONVERSION_WORKERS=5000"}, "conversion.workers", "1..1024"},
		{"workers not a number", "conversion:\n  workers: many\n", nil, "conversion.workers", ""},
		{"no checkpoint rows", "conversion:\n  checkpoint_rows: 0\n", nil, "conversion.checkpoint_rows", "1..1000000"},
		{"negative checkpoint interval", "conversion:\n  checkpoint_every: -1s\n", nil, "conversion.checkpoint_every", "positive"},
		{"zero poll", "conversion:\n  poll: 0s\n", nil, "conversion.poll", "positive"},
		{"short lease", "conversion:\n  lease_ttl: 100ms\n", nil, "conversion.lease_ttl", "at least 1s"},
		{"bad upload size", "conversion:\n  max_upload: huge\n", nil, "conversion.max_upload", "not a size"},
		{"tiny upload size", "", []string{"HUB_CONVERSION_MAX_UPLOAD=10"}, "conversion.max_upload", "between 1KiB"},
		{"bad unzip limit", "conversion:\n  xlsx_max_unzipped: lots\n", nil, "conversion.xlsx_max_unzipped", "not a size"},
		{"tiny unzip limit", "", []string{"HUB_CONVERSION_XLSX_MAX_UNZIPPED=64KiB"}, "conversion.xlsx_max_unzipped", "between 1MiB"},
		{"huge unzip limit", "conversion:\n  xlsx_max_unzipped: 2048GiB\n", nil, "conversion.xlsx_max_unzipped", "and 1024GiB"},
		{"typo", "conversion:\n  worker: 3\n", nil, "conversion.worker", `did you mean "workers"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "hub.yaml")
			if err := os.WriteFile(path, []byte(tt.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path, tt.env)
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			if msg := err.Error(); !strings.Contains(msg, tt.wantKey) || !strings.Contains(msg, tt.wantMsg) {
				t.Errorf("error %q does not name key %q with %q", msg, tt.wantKey, tt.wantMsg)
			}
		})
	}
	cfg, err := Load("", []string{"HUB_CONVERSION_MAX_UPLOAD=512MiB", "HUB_CONVERSION_WORKERS=4", "HUB_CONVERSION_LEASE_TTL=1m",
		"HUB_CONVERSION_XLSX_MAX_UNZIPPED=256MiB"})
	if err != nil {
		t.Fatal(err)
	}
	if c := cfg.Conversion; c.MaxUpload != 512<<20 || c.Workers != 4 || c.LeaseTTL != Duration(time.Minute) || c.XLSXMaxUnzipped != 256<<20 {
		t.Errorf("env overrides not applied: %+v", c)
	}
}
