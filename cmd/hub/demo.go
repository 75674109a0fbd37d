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

	"github.com/licensehub/licensehub/adapters/sim"
	"github.com/licensehub/licensehub/auth"
	"github.com/licensehub/licensehub/ident"
	"github.com/licensehub/licensehub/license"
	"github.com/licensehub/licensehub/signing"
)

// The demo issuing authority and license type: the worked example of
// GB/T 36904 (a provincial market-regulation authority issuing business
// licenses of the type defined by the national market regulator), and the
// issuing system that configs/members.yaml grants it to.
const (
	demoAuthority     = "11430000006122244L"
	demoAuthorityName = "湖南省市场监督管理局（演示）"
	demoTypeCode      = "11100000000013338W011"
	demoIssuerApp     = "scjg-issuer"

	// The second issuing department: the city bureau issuing food
	// business permits (configs/authorities.yaml, configs/members.yaml).
	demoFoodAuthority = "11430100MB1K32010B"
	demoFoodTypeCode  = "11100000000013338W024"
	demoFoodApp       = "csscjg-food-issuer"
)

// demoFiles are what the demo writes for the printed next steps.
type demoFiles struct {
	License     string // the demo business license as the library stored it
	PushRequest string // a second license, for `hubctl push`
	Bundle      string // the public keys, for offline verification
	PubKey      string // the demo authority's public key (PEM), for OpenSSL
	Identifier  string
	// Register is a legacy business register (GB18030 CSV) for the
	// conversion steps, read with the mapping demoMapping.
	Register string
	// FoodPermit is a food business permit of the second issuing
	// department, for `hubctl push` with its app ID.
	FoodPermit string
}

// ensureDemoKeys gives the demo authorities and the hub itself a key
// unless they have an active one. A keyring that exists but does not open
// is left for the operator to fix.
func ensureDemoKeys(cfg keyringConfig, hubAuthority string) error {
	now := time.Now().UTC().Truncate(time.Second)
	for _, authority := range []string{demoAuthority, demoFoodAuthority, hubAuthority} {
		if ring, err := openKeyring(cfg); err == nil {
			if _, err := ring.SignerFor(authority, now); err == nil {
				continue
			}
		} else if _, statErr := os.Stat(filepath.Join(cfg.dir, signing.KeyringFile)); !errors.Is(statErr, fs.ErrNotExist) {
			return err
		}
		if _, err := signing.Generate(cfg.dir, authority, now.Add(-time.Minute), now.AddDate(5, 0, 0), cfg.password); err != nil {
			return fmt.Errorf("demo key for %s: %w", authority, err)
		}
	}
	return nil
}

// demoPush is a business license as the market regulator's system pushes it.
func demoPush(number, company, creditCode string, issued time.Time) license.PushRequest {
	day := issued.In(license.CST).Format(license.DateLayout)
	return license.PushRequest{
		TypeCode: demoTypeCode, Issuer: license.Party{Name: demoAuthorityName, Code: demoAuthority},
		Number: number, Holder: license.Holder{Name: company, Code: creditCode, CodeType: ident.HolderCreditCode},
		IssueDate: day, ValidFrom: day, AreaCode: "430100",
		Matter: &license.Party{Code: "330100-000-XK-00123", Name: "企业设立登记"},
		Fields: map[string]any{
			"unified_social_credit_code": creditCode,
			"name":                       company,
			"entity_type":                "有限责任公司（自然人投资或控股）",
			"legal_representative":       "张三",
			"registered_capital":         "壹佰万元整",
			"established_date":           "2023-03-01",
			"business_term_to":           license.LongTerm,
			"address":                    "湖南省长沙市岳麓区示范路1号",
			"business_scope":             "软件开发；信息技术咨询服务。（依法须经批准的项目，经相关部门批准后方可开展经营活动）",
			"registration_authority":     demoAuthorityName,
		},
	}
}

// demoFoodPermit is a food business permit as the city bureau's system
// pushes it. issuer.name is left out: the hub takes it from the authority
// registry.
func demoFoodPermit(issued time.Time) license.PushRequest {
	day := issued.In(license.CST).Format(license.DateLayout)
	operator, code := "长沙岳麓味道餐饮有限公司", creditCode("91430104MA4L1F2G3")
	return license.PushRequest{
		TypeCode: demoFoodTypeCode, Issuer: license.Party{Code: demoFoodAuthority},
		Number: "JY24301040012345", Holder: license.Holder{Name: operator, Code: code, CodeType: ident.HolderCreditCode},
		IssueDate: day, ValidFrom: day, AreaCode: "430104",
		Matter: &license.Party{Code: "330100-000-XK-00301", Name: "食品经营许可"},
		Fields: map[string]any{
			"operator_name":              operator,
			"unified_social_credit_code": code,
			"legal_representative":       "李四",
			"domicile":                   "湖南省长沙市岳麓区麓山路10号",
			"business_premises":          "湖南省长沙市岳麓区麓山路10号一楼",
			"main_business_format":       "餐饮服务经营者",
			"online_operation":           false,
			"business_items":             "热食类食品制售",
			"daily_supervision_agency":   "长沙市岳麓区市场监督管理局",
			"complaint_hotline":          "12315",
		},
	}
}

// pushByCode is a push as a department may write it: the issuer by its
// code alone (the hub fills in the registered name).
type pushByCode struct {
	TypeCode string     `json:"type_code"`
	Issuer   issuerCode `json:"issuer"` // hides PushRequest.Issuer
	license.PushRequest
}

type issuerCode struct {
	Code string `json:"code"`
}

// seedDemo pushes the demo license through the library (a retry on later
// starts: the same license comes back) and writes what the printed next
// steps use under data_dir/demo.
func seedDemo(ctx context.Context, lib *license.Library, ring *signing.Keyring, dataDir string) (*demoFiles, error) {
	now := time.Now()
	req := demoPush("20230000403", "长沙示范科技有限公司", "91350100M000100Y43", now)
	req.App = demoIssuerApp
	out, err := lib.Push(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("demo license: %w", err)
	}
	signer, err := ring.SignerFor(demoAuthority, now)
	if err != nil {
		return nil, err
	}
	bundle, err := json.MarshalIndent(signing.ExportBundle(ring, now), "", "  ")
	if err != nil {
		return nil, err
	}
	next, err := json.MarshalIndent(demoPush("20230000404", "长沙样例信息技术有限公司", creditCode("91430100MA4L0000X"), now), "", "  ")
	if err != nil {
		return nil, err
	}
	// The food permit is printed for pasting, not pushed: a dry run makes
	// sure the step works (catalog, registry, key) before it is printed.
	food := demoFoodPermit(now)
	food.App = demoFoodApp
	if _, err := lib.Check(ctx, food); err != nil {
		return nil, fmt.Errorf("demo food business permit: %w", err)
	}
	foodJSON, err := json.MarshalIndent(pushByCode{TypeCode: food.TypeCode, Issuer: issuerCode{food.Issuer.Code},
		PushRequest: demoFoodPermit(now)}, "", "  ")
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(dataDir, "demo")
	files := &demoFiles{
		License:     filepath.Join(dir, "business-license.json"),
		PushRequest: filepath.Join(dir, "push-request.json"),
		FoodPermit:  filepath.Join(dir, "food-permit-request.json"),
		Bundle:      filepath.Join(dir, "keys-bundle.json"),
		PubKey:      filepath.Join(dir, "authority.pub.pem"),
		Identifier:  out.Identifier,
		Register:    filepath.Join(dir, "legacy-register.csv"),
	}
	register, err := legacyRegister()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	for path, content := range map[string][]byte{
		files.License: out.Document, files.PushRequest: append(next, '\n'), files.FoodPermit: append(foodJSON, '\n'),
		files.Bundle: append(bundle, '\n'),
		files.PubKey: []byte(signer.Key().PublicKeyPEM), files.Register: register,
	} {
		if err := os.WriteFile(path, content, 0o644); err != nil {
			return nil, err
		}
	}
	return files, nil
}

// creditCode completes a 17-character credit code with its check character.
func creditCode(first17 string) string {
	c, err := ident.CreditCodeCheck(first17)
	if err != nil {
		panic(err) // a constant above is wrong
	}
	return first17 + string(c)
}

func printDemoSteps(w io.Writer, base, keysDir, simURL string, f *demoFiles) {
	issuer, supervisor, citizen := auth.DemoSecret(demoIssuerApp), auth.DemoSecret("city-supervisor"), auth.DemoSecret("citizen-app")
	approval, admin := auth.DemoSecret("scjg-approval"), auth.DemoSecret("hub-admin")
	rep := sim.SamplePeople(1)[0] // the legal representative: a person the simulated public-security system knows
	fmt.Fprintf(w, `
Demo: the library holds a business license signed with SM2 for %[2]s
  %[9]s   (document: %[3]s)

Verify it (public):
  go run ./cmd/hubctl --hub %[1]s verify %[3]s                   # the hub: signature, key, identifier, validity, status
  go run ./cmd/hubctl verify %[3]s --keys %[4]s   # offline, hub not needed
  curl -s -H 'Content-Type: application/json' --data-binary @%[3]s %[1]s/v1/verify
  curl -s %[1]s/v1/keys ; curl -s %[1]s/v1/catalog/types
  # with nothing but OpenSSL and jq: README.md, "Verifying with OpenSSL" (key: %[6]s)

Member systems sign their calls with HMAC-SM3 (configs/members.yaml, demo secrets):
  export HUBCTL_HUB=%[1]s
  export HUBCTL_APP_ID=%[10]s HUBCTL_SECRET=%[11]s     # the market regulator's issuing system
  go run ./cmd/hubctl push %[5]s          # 201 the first time, 200 (same license) after
  HUBCTL_APP_ID=%[18]s HUBCTL_SECRET=%[19]s go run ./cmd/hubctl push %[20]s
      # a second department: the city bureau's food business permit; its issuer.name comes from the authority registry
  curl -s %[1]s/v1/authorities      # the registered issuing authorities (public)
  HUBCTL_APP_ID=city-supervisor HUBCTL_SECRET=%[7]s go run ./cmd/hubctl audit list
  HUBCTL_APP_ID=citizen-app HUBCTL_SECRET=%[8]s go run ./cmd/hubctl usage 91350100M000100Y43
  go run ./cmd/hubctl keys list --dir %[12]s
  go run ./cmd/hubctl audit verify    # re-reads the sealed audit segments (sealed every audit.seal_interval and at shutdown)

Certificates from the public-security, social-security and tax systems (simulated at %[13]s), signed by the hub:
  export HUBCTL_APP_ID=scjg-approval HUBCTL_SECRET=%[14]s   # an approval system, for matter 330100-000-XK-00123
  go run ./cmd/hubctl certify identity id_number=%[15]s name=%[21]s --matter 330100-000-XK-00123
  go run ./cmd/hubctl certify identity id_number=%[15]s name=王不对 --matter 330100-000-XK-00123   # a check: name_match false, nothing disclosed
  go run ./cmd/hubctl certify tax_payments credit_code=%[16]s from=2026-01 to=2026-06 --matter 330100-000-XK-00123
  HUBCTL_APP_ID=hub-admin HUBCTL_SECRET=%[17]s go run ./cmd/hubctl adapters   # breaker state, error rate, latency

Once-only: the applicant consents, the approval system gets every material of the matter at once:
  HUBCTL_APP_ID=citizen-app HUBCTL_SECRET=%[8]s go run ./cmd/hubctl consent create --holder 91350100M000100Y43 --matter 330100-000-XK-00123 --app scjg-approval
  export HUBCTL_APP_ID=scjg-approval HUBCTL_SECRET=%[14]s
  go run ./cmd/hubctl lookup --holder 91350100M000100Y43 --matter 330100-000-XK-00123 --consent TOKEN
  go run ./cmd/hubctl materials --matter 330100-000-XK-00123 --holder 91350100M000100Y43 --name 长沙示范科技有限公司 \
      --input legal_representative_id_number=%[15]s --input legal_representative_name=%[21]s --consent TOKEN
`, base, demoAuthorityName, f.License, f.Bundle, f.PushRequest, f.PubKey, supervisor, citizen, f.Identifier,
		demoIssuerApp, issuer, keysDir, simURL, approval, rep, sim.SampleCompanies(1)[0], admin,
		demoFoodApp, auth.DemoSecret(demoFoodApp), f.FoodPermit, sim.PersonName(rep))
}
