package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/licensehub/licensehub/catalog"
	"github.com/licensehub/licensehub/convert"
)

// The demo register is what the printed steps promise: GB18030, read by
// the shipped mapping, 20 rows of which one has a wrong check character
// and one repeats an earlier registration number; the rest convert.
func TestDemoRegisterReadsWithTheShippedMapping(t *testing.T) {
	file, err := legacyRegister()
	if err != nil {
		t.Fatal(err)
	}
	if utf8.Valid(file) {
		t.Error("the demo register is valid UTF-8; it should be GB18030 like the legacy exports")
	}
	if again, _ := legacyRegister(); !bytes.Equal(file, again) {
		t.Error("the demo register differs between starts")
	}
	mappings, err := convert.LoadMappings(filepath.Join("..", "..", "configs", "conversion"))
	if err != nil {
		t.Fatal(err)
	}
	m, ok := mappings[demoMapping]
	if !ok {
		t.Fatalf("configs/conversion has no mapping %q", demoMapping)
	}
	cat, err := catalog.Load(filepath.Join("..", "..", "configs", "catalog"))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.BindCatalog(cat); err != nil {
		t.Fatal(err)
	}
	r, err := convert.OpenReader(bytes.NewReader(file), int64(len(file)), m.Format, m.Encoding, m.Sheet, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rejects := map[int]string{}
	numbers := map[string]int{}
	var dupLine, rows int
	for {
		row, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("row after %d: %v", rows, err)
		}
		rows++
		req, rej := m.Request(row, "demo-batch")
		if rej != nil {
			rejects[rej.Line] = rej.Code
			continue
		}
		if req.Holder.Name == "" || req.Fields["established_date"] == nil || !strings.HasPrefix(req.Holder.Code, "91430100") {
			t.Errorf("line %d: incomplete request %+v", row.Line, req)
		}
		if _, dup := numbers[req.Number]; dup {
			dupLine = row.Line
		}
		numbers[req.Number] = row.Line
	}
	want := map[int]string{21: convert.RejectBadHolderCode} // line 21: row 20 (line 1 is the header)
	if rows != 20 || len(rejects) != 1 || rejects[21] != want[21] {
		t.Errorf("%d rows, rejects %v; want 20 rows, rejects %v", rows, rejects, want)
	}
	if dupLine != 20 || len(numbers) != 18 {
		t.Errorf("duplicate at line %d with %d distinct numbers; want line 20 (row 19) and 18", dupLine, len(numbers))
	}
}

func TestConversionStepsNameTheFiles(t *testing.T) {
	var b strings.Builder
	f := &demoFiles{Register: filepath.Join("data", "demo", "legacy-register.csv")}
	printConversionSteps(&b, "http://127.0.0.1:8080", f)
	out := b.String()
	for _, want := range []string{
		"go run ./cmd/hubctl convert --mapping " + demoMapping + " --dry-run " + f.Register,
		"go run ./cmd/hubctl convert --mapping " + demoMapping + " " + f.Register,
		"hubcurl POST \"/v1/conversions?mapping=" + demoMapping + "&sm3=",
		"hubcurl GET /v1/conversions/JOB_ID/rejects",
		"HUBCTL_APP_ID=" + demoIssuerApp,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the steps do not say %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "%!") {
		t.Errorf("a formatting mistake in the steps:\n%s", out)
	}
}

// A mapping file with a problem stops the hub before it listens, exit 2,
// naming the file and the key, like a bad configuration key.
func TestBadMappingFileExits2NamingTheFile(t *testing.T) {
	configs, err := filepath.Abs(filepath.Join("..", "..", "configs"))
	if err != nil {
		t.Fatal(err)
	}
	mappings := t.TempDir()
	bad := filepath.Join(mappings, "old-register.yaml")
	if err := os.WriteFile(bad, []byte("license_type: \"11100000000013338W011\"\nauthority: {name: x, code: \"11430000006122244L\"}\ncolumns:\n  number: 注册号\n  holder.nmae: 企业名称\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	tests := []struct {
		name, dir, want string
	}{
		{"bad file", mappings, "old-register.yaml"},
		{"no directory", filepath.Join(data, "nowhere"), "conversion.mappings_dir"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), nil, []string{"HUB_SERVER_ADDR=127.0.0.1:0", "HUB_DATA_DIR=" + data,
				"HUB_SIGNING_KEYS_DIR=" + filepath.Join(data, "keys"), "HUB_AUDIT_JOURNAL_DIR=" + filepath.Join(data, "audit"),
				"HUB_AUTH_MEMBERS_FILE=" + filepath.Join(configs, "members.yaml"), "HUB_CATALOG_DIR=" + filepath.Join(configs, "catalog"), "HUB_AUTHORITIES_FILE=" + filepath.Join(configs, "authorities.yaml"),
				"HUB_LOOKUP_MATTERS_FILE=" + filepath.Join(configs, "matters.yaml"), "HUB_CONVERSION_MAPPINGS_DIR=" + tt.dir,
				"HUB_LOG_LEVEL=error"}, &stdout, &stderr)
			if code != 2 || !strings.Contains(stderr.String(), tt.want) || !strings.Contains(stderr.String(), "conversion.mappings_dir") {
				t.Errorf("exit %d, stderr %q; want 2 naming %s", code, stderr.String(), tt.want)
			}
		})
	}
}
