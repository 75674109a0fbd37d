package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/licensehub/licensehub/auth"
	"github.com/licensehub/licensehub/ident"
	"github.com/licensehub/licensehub/license"
	"github.com/licensehub/licensehub/signing"
)

// The demo issuing authority and license type: the worked example of
// GB/T 36904 (a provincial market-regulation authority issuing business
// licenses of the type defined by the national market regulator).
const (
	demoAuthority     = "11430000006122244L"
	demoAuthorityName = "湖南省市场监督管理局（演示）"
	demoTypeCode      = "11100000000013338W011"
)

// demoFiles are what the demo writes for the printed next steps.
type demoFiles struct {
	License string // a signed business license
	Bundle  string // the public keys, for offline verification
	PubKey  string // the demo authority's public key (PEM), for OpenSSL
}

// seedDemo makes sure the demo authority and the hub itself have keys and
// writes a signed demo license with a key bundle beside it. Keys that
// already exist are left alone.
func seedDemo(ctx context.Context, cfg keyringConfig, dataDir, hubAuthority string) (*signing.Keyring, *demoFiles, error) {
	now := time.Now().UTC().Truncate(time.Second)
	for _, authority := range []string{demoAuthority, hubAuthority} {
		if err := ensureDemoKey(cfg, authority, now); err != nil {
			return nil, nil, fmt.Errorf("demo key for %s: %w", authority, err)
		}
	}
	ring, err := openKeyring(cfg)
	if err != nil {
		return nil, nil, err
	}
	signer, err := ring.SignerFor(demoAuthority, now)
	if err != nil {
		return nil, nil, err
	}

	id, err := ident.New(demoTypeCode, demoAuthority, "20230000403", 1)
	if err != nil {
		return nil, nil, err
	}
	lic := license.License{
		Identifier: id.String(), Name: "营业执照", TypeCode: demoTypeCode, TypeName: "营业执照",
		Number: "20230000403", Version: fmt.Sprintf("%03d", id.Version),
		Issuer:    license.Party{Name: demoAuthorityName, Code: demoAuthority},
		IssueDate: now.In(license.CST).Format(license.DateLayout), ValidFrom: now.In(license.CST).Format(license.DateLayout),
		ValidUntil: license.LongTerm,
		Holder:     license.Holder{Name: "福州示范科技有限公司", Code: "91350100M000100Y43", CodeType: ident.HolderCreditCode},
		AreaCode:   "430000",
		Fields: map[string]any{
			"company_type":         "有限责任公司（自然人投资或控股）",
			"legal_representative": "张三",
			"registered_capital":   "壹佰万元整",
			"business_scope":       "软件开发；信息技术咨询服务。（依法须经批准的项目，经相关部门批准后方可开展经营活动）",
			"address":              "福建省福州市鼓楼区示范路1号",
			"established":          "2023-03-01",
		},
	}
	body, err := json.Marshal(lic)
	if err != nil {
		return nil, nil, err
	}
	doc, err := signing.Sign(ctx, signer, body, now)
	if err != nil {
		return nil, nil, err
	}
	raw, err := doc.Marshal()
	if err != nil {
		return nil, nil, err
	}
	bundle, err := json.MarshalIndent(signing.ExportBundle(ring, now), "", "  ")
	if err != nil {
		return nil, nil, err
	}
	dir := filepath.Join(dataDir, "demo")
	files := &demoFiles{
		License: filepath.Join(dir, "business-license.json"),
		Bundle:  filepath.Join(dir, "keys-bundle.json"),
		PubKey:  filepath.Join(dir, "authority.pub.pem"),
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, err
	}
	for path, content := range map[string][]byte{
		files.License: raw, files.Bundle: append(bundle, '\n'), files.PubKey: []byte(signer.Key().PublicKeyPEM),
	} {
		if err := os.WriteFile(path, content, 0o644); err != nil {
			return nil, nil, err
		}
	}
	return ring, files, nil
}

func printDemoSteps(w io.Writer, base, keysDir string, f *demoFiles) {
	fmt.Fprintf(w, `
Demo: a business license signed with SM2 for %[2]s:
  %[3]s

  go run ./cmd/hubctl --hub %[1]s verify %[3]s                   # the hub verifies
  go run ./cmd/hubctl verify %[3]s --keys %[4]s   # offline, hub not needed
  curl -s -X POST --data-binary @%[3]s %[1]s/v1/verify
  curl -s %[1]s/v1/keys
  go run ./cmd/hubctl keys list --dir %[5]s
  # and with nothing but OpenSSL and jq: see "Verifying with OpenSSL" in README.md (key: %[6]s)

Member systems sign their calls with HMAC-SM3 (configs/members.yaml; demo secrets):
  export HUBCTL_HUB=%[1]s
  HUBCTL_APP_ID=city-supervisor HUBCTL_SECRET=%[7]s go run ./cmd/hubctl audit list
  HUBCTL_APP_ID=citizen-app HUBCTL_SECRET=%[8]s go run ./cmd/hubctl usage 91350100M000100Y43
  go run ./cmd/hubctl audit verify    # re-reads the sealed audit segments (sealed every audit.seal_interval and at shutdown)
`, base, demoAuthorityName, f.License, f.Bundle, keysDir, f.PubKey,
		auth.DemoSecret("city-supervisor"), auth.DemoSecret("citizen-app"))
}

// ensureDemoKey generates a key for authority unless it has an active one.
// A keyring that exists but does not open is left for the operator to fix.
func ensureDemoKey(cfg keyringConfig, authority string, now time.Time) error {
	if ring, err := openKeyring(cfg); err == nil {
		if _, err := ring.SignerFor(authority, now); err == nil {
			return nil
		}
	} else if _, statErr := os.Stat(filepath.Join(cfg.dir, signing.KeyringFile)); !errors.Is(statErr, fs.ErrNotExist) {
		return err
	}
	_, err := signing.Generate(cfg.dir, authority, now.Add(-time.Minute), now.AddDate(5, 0, 0), cfg.password)
	return err
}
