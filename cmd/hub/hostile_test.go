package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm3"
	"github.com/xuri/excelize/v2"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/adapters/sim"
	"github.com/licensehub/licensehub/adapters/sim/simtest"
	"github.com/licensehub/licensehub/auth"
	"github.com/licensehub/licensehub/client"
	"github.com/licensehub/licensehub/ident"
	"github.com/licensehub/licensehub/internal/testenv"
	"github.com/licensehub/licensehub/license"
	"github.com/licensehub/licensehub/signing"
)

// demoHub is the real hub binary started from the repository root with
// the shipped configs (demo mode, embedded backends) on a fresh data dir.
type demoHub struct {
	base    string
	dataDir string
}

func startDemoHub(t *testing.T) *demoHub {
	t.Helper()
	bin := buildHub(t)
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	cmd := exec.Command(bin)
	cmd.Dir = root // configs/hub.yaml and every file it names
	cmd.Env = append(os.Environ(), "HUB_SERVER_ADDR=127.0.0.1:0", "HUB_DATA_DIR="+dataDir,
		"HUB_AUDIT_JOURNAL_DIR="+filepath.Join(dataDir, "audit"), "HUB_SIGNING_KEYS_DIR="+filepath.Join(dataDir, "keys"))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr, _ := waitListening(t, stdout)
	go io.Copy(io.Discard, stdout)
	return &demoHub{base: "http://" + addr, dataDir: dataDir}
}

// call sends one request as app (signed with its demo secret; "" sends it
// unsigned) and returns the status and the body. The body is sent as
// application/json unless hdr says otherwise (an empty Content-Type sends
// none). A RATE_LIMITED answer is retried after its Retry-After: the demo
// members' limits are low.
func (h *demoHub) call(t *testing.T, app, method, path string, query url.Values, body []byte, hdr http.Header) (int, []byte) {
	t.Helper()
	return h.send(t, app, method, path, query, body, hdr, false)
}

// send is call; uploadSigned signs the request as an upload (the file is
// covered by its sm3 query parameter, the signature by an empty body).
func (h *demoHub) send(t *testing.T, app, method, path string, query url.Values, body []byte, hdr http.Header, uploadSigned bool) (int, []byte) {
	t.Helper()
	u := h.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	for attempt := 0; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		req, err := http.NewRequestWithContext(ctx, method, u, rd)
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		for k, vs := range hdr {
			req.Header.Del(k)
			for _, v := range vs {
				if v != "" {
					req.Header.Add(k, v)
				}
			}
		}
		if app != "" {
			signed := body
			if uploadSigned {
				signed = nil
			}
			if err := client.SignRequest(req, signed, client.Credentials{AppID: app, Secret: auth.DemoSecret(app)}, time.Now()); err != nil {
				cancel()
				t.Fatal(err)
			}
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			cancel()
			t.Fatalf("%s %s: %v", method, path, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		if resp.StatusCode == http.StatusTooManyRequests && attempt < 20 {
			wait, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
			time.Sleep(time.Duration(max(wait, 1)) * time.Second)
			continue
		}
		return resp.StatusCode, b
	}
}

// hostile is one bad request and the refusal it must get.
type hostile struct {
	name   string
	app    string // member system making the call ("" = unsigned)
	method string
	path   string
	query  url.Values
	body   []byte
	hdr    http.Header
	status int
	code   string
	field  string // details.field; "" = not checked
	upload bool   // signed as an upload (POST /v1/conversions)
}

// jsonBody marshals v (a test fixture) or fails the test.
func jsonBody(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pushBody is the demo's second business license as a JSON object, with
// edit applied: the base of every hostile push.
func pushBody(t *testing.T, h *demoHub, edit func(m map[string]any)) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(h.dataDir, "demo", "push-request.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(m)
	}
	return jsonBody(t, m)
}

func (c hostile) run(t *testing.T, h *demoHub) {
	t.Helper()
	status, b := h.send(t, c.app, c.method, c.path, c.query, c.body, c.hdr, c.upload)
	var e struct {
		Code    string         `json:"code"`
		Message string         `json:"message"`
		Details map[string]any `json:"details"`
	}
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("%d, body is not the hub's JSON error: %q", status, clipped(b))
	}
	if status != c.status || e.Code != c.code {
		t.Fatalf("got %d %s (%s), want %d %s", status, e.Code, e.Message, c.status, c.code)
	}
	if c.field != "" && e.Details["field"] != c.field {
		t.Errorf("details.field = %v, want %q (%s)", e.Details["field"], c.field, e.Message)
	}
	for _, leak := range []string{"2006-01-02", "h0m0s", "./data", h.dataDir, "json: ", "Go struct", "map[string]", "interface {}"} {
		if strings.Contains(e.Message, leak) {
			t.Errorf("message shows %q: %s", leak, e.Message)
		}
	}
}

func clipped(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}

// TestHostileInputs is the acceptance test of "nothing garbage is ever
// signed": the real hub binary, started as a newcomer starts it (shipped
// configs, demo mode, embedded backends), refuses each hostile input with
// the status, code and field a client can act on, in words without Go
// text; and what it must not have done (revoke on a duplicate member,
// disclose on a wrong name) it did not do.
func TestHostileInputs(t *testing.T) {
	t.Setenv("HUB_SERVER_READ_TIMEOUT", "3s")            // the stalled-body case
	t.Setenv("HUB_CONVERSION_XLSX_MAX_UNZIPPED", "1MiB") // the zip-bomb case
	h := startDemoHub(t)
	const (
		issuer, approval, citizen, admin = "scjg-issuer", "scjg-approval", "citizen-app", "hub-admin"
		matter                           = "330100-000-XK-00123"
		demoHolder                       = "91350100M000100Y43"
	)
	person, company := sim.SamplePeople(1)[0], sim.SampleCompanies(1)[0]
	day := func(d time.Time) string { return d.In(license.CST).Format(license.DateLayout) }
	today := time.Now()

	// Two licenses of our own: one stays valid, one is revoked.
	push := func(edit func(m map[string]any)) []byte { return pushBody(t, h, edit) }
	number := func(n string) func(m map[string]any) { return func(m map[string]any) { m["number"] = n } }
	created := func(body []byte) string {
		status, b := h.call(t, issuer, "POST", "/v1/licenses", nil, body, nil)
		if status != http.StatusCreated {
			t.Fatalf("setup push: %d %s", status, clipped(b))
		}
		doc, err := signing.ParseDocument(b)
		if err != nil {
			t.Fatal(err)
		}
		var lic license.License
		if err := json.Unmarshal(doc.Body, &lic); err != nil {
			t.Fatal(err)
		}
		return lic.Identifier
	}
	valid, revoked := created(push(nil)), created(push(number("20230000405")))
	if status, b := h.call(t, issuer, "POST", "/v1/licenses/"+revoked+"/status", nil, []byte(`{"op":"revoke","reason":"以欺骗手段取得许可"}`), nil); status != 200 {
		t.Fatalf("setup revoke: %d %s", status, b)
	}

	// Bodies and helpers.
	set := func(path string, v any) func(m map[string]any) {
		return func(m map[string]any) {
			keys := strings.Split(path, ".")
			for _, k := range keys[:len(keys)-1] {
				m = m[k].(map[string]any)
			}
			if v == nil {
				delete(m, keys[len(keys)-1])
			} else {
				m[keys[len(keys)-1]] = v
			}
		}
	}
	raw := func(base []byte, old, new string) []byte {
		if !bytes.Contains(base, []byte(old)) {
			t.Fatalf("%q not in %s", old, base)
		}
		return bytes.Replace(base, []byte(old), []byte(new), 1)
	}
	base := push(nil)
	holderName := pushBodyHolderName(t, base)
	ctype := func(v string) http.Header { return http.Header{"Content-Type": {v}} }
	consent := func(edit func(m map[string]any)) []byte {
		m := map[string]any{"holder_code": demoHolder, "holder_code_type": "001", "matter": matter, "app": approval,
			"until": today.Add(time.Hour).UTC().Format(time.RFC3339)}
		if edit != nil {
			edit(m)
		}
		return jsonBody(t, m)
	}
	materials := func(edit func(m map[string]any)) []byte {
		m := map[string]any{"holder_code": demoHolder, "holder_name": "长沙示范科技有限公司",
			"inputs": map[string]any{"legal_representative_id_number": person, "legal_representative_name": sim.PersonName(person)}}
		if edit != nil {
			edit(m)
		}
		return jsonBody(t, m)
	}
	matterHdr := http.Header{"X-Hub-Matter": {matter}}
	statusPath := "/v1/licenses/" + valid + "/status"
	versionsPath := "/v1/licenses/" + valid + "/versions"
	materialsPath := "/v1/matters/" + matter + "/materials"
	docBytes, err := os.ReadFile(filepath.Join(h.dataDir, "demo", "business-license.json"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := ident.CreditCodeCheck("91430100MA4L22222")
	if err != nil {
		t.Fatal(err)
	}
	otherCompany := "91430100MA4L22222" + string(c) // valid, another company's

	bomb := zipBomb(t)
	cases := []hostile{
		// push: encoding and JSON structure
		{name: "push: invalid UTF-8 in holder.name (ff fe c3 28)", body: raw(base, `"code_type":"001","name":"`+holderName, `"code_type":"001","name":"`+"\xff\xfe\xc3\x28"), status: 400, code: licensehub.EMALFORMED, field: "holder.name"},
		{name: "push: invalid UTF-8 in a face field", body: raw(base, "张三", "\xc3\x28"), status: 400, code: licensehub.EMALFORMED, field: "fields.legal_representative"},
		{name: "push: lone surrogate", body: raw(base, `"code_type":"001","name":"`+holderName, `"code_type":"001","name":"\ud800`), status: 400, code: licensehub.EMALFORMED, field: "holder.name"},
		{name: "push: number twice", body: raw(base, `"number":`, `"number":"1","number":`), status: 400, code: licensehub.EMALFORMED, field: "number"},
		{name: "push: holder code_type twice", body: raw(base, `"code_type":`, `"code_type":"111","code_type":`), status: 400, code: licensehub.EMALFORMED, field: "holder.code_type"},
		{name: "push: face field twice", body: raw(base, `"legal_representative":`, `"legal_representative":"李四","legal_representative":`), status: 400, code: licensehub.EMALFORMED, field: "fields.legal_representative"},
		{name: "push: unknown member", body: raw(base, `"number":`, `"numbr":"1","number":`), status: 400, code: licensehub.EMALFORMED, field: "numbr"},
		{name: "push: member in another case", body: raw(base, `"number":`, `"Number":"1","number":`), status: 400, code: licensehub.EMALFORMED, field: "Number"},
		{name: "push: byte order mark", body: append([]byte("\ufeff"), base...), status: 400, code: licensehub.EMALFORMED, field: "body"},
		{name: "push: trailing data", body: append(append([]byte{}, base...), "{}"...), status: 400, code: licensehub.EMALFORMED, field: "body"},
		{name: "push: not JSON", body: []byte("{"), status: 400, code: licensehub.EMALFORMED, field: "body"},
		{name: "push: empty body", body: []byte{}, hdr: ctype("application/json"), status: 400, code: licensehub.EMALFORMED, field: "body"},
		{name: "push: number as a JSON number", body: push(set("number", 20230000406)), status: 400, code: licensehub.EMALFORMED, field: "number"},
		{name: "push: holder as text", body: push(set("holder", "长沙")), status: 400, code: licensehub.EMALFORMED, field: "holder"},
		{name: "push: attachment not base64", body: push(set("attachment", map[string]any{"media_type": "application/pdf", "data": "!!"})), status: 400, code: licensehub.EMALFORMED, field: "attachment.data"},
		{name: "push: no Content-Type", body: base, hdr: ctype(""), status: 415, code: licensehub.EMEDIATYPE, field: "Content-Type"},
		{name: "push: text/plain", body: base, hdr: ctype("text/plain"), status: 415, code: licensehub.EMEDIATYPE, field: "Content-Type"},
		{name: "push: JSON in GBK", body: base, hdr: ctype("application/json; charset=gbk"), status: 415, code: licensehub.EMEDIATYPE, field: "Content-Type"},
		// push: text that would be signed
		{name: "push: 10 KB holder name", body: push(set("holder.name", strings.Repeat("名", 10240))), status: 400, code: licensehub.EINVALID, field: "holder.name"},
		{name: "push: right-to-left override in holder name", body: push(set("holder.name", "长沙示范\u202e司公限有技科")), status: 400, code: licensehub.EINVALID, field: "holder.name"},
		{name: "push: zero-width space in holder name", body: push(set("holder.name", "长沙示范科技\u200b有限公司")), status: 400, code: licensehub.EINVALID, field: "holder.name"},
		{name: "push: BOM inside a name", body: push(set("holder.name", "长沙示范科技\ufeff有限公司")), status: 400, code: licensehub.EINVALID, field: "holder.name"},
		{name: "push: control character in a face field", body: push(set("fields.address", "湖南省长沙市\u0007岳麓区")), status: 400, code: licensehub.EINVALID, field: "fields.address"},
		{name: "push: newline in holder name", body: push(set("holder.name", "长沙示范\n科技有限公司")), status: 400, code: licensehub.EINVALID, field: "holder.name"},
		{name: "push: private-use character", body: push(set("fields.legal_representative", "张\ue000")), status: 400, code: licensehub.EINVALID, field: "fields.legal_representative"},
		{name: "push: replacement characters (a lossy decode upstream)", body: push(set("holder.name", "\ufffd\ufffd\ufffd(")), status: 400, code: licensehub.EINVALID, field: "holder.name"},
		{name: "push: decomposed (not NFC) text", body: push(set("fields.legal_representative", "Jose\u0301")), status: 400, code: licensehub.EINVALID, field: "fields.legal_representative"},
		{name: "push: 65-character license number", body: push(set("number", strings.Repeat("1", 65))), status: 400, code: licensehub.EINVALID, field: "number"},
		{name: "push: face field over its catalog length", body: push(set("fields.business_scope", strings.Repeat("软", 2001))), status: 400, code: licensehub.EINVALID, field: "fields.business_scope"},
		{name: "push: unknown face field", body: push(set("fields.nickname", "x")), status: 400, code: licensehub.EINVALID, field: "fields.nickname"},
		// push: consistency with the catalog and the authority registry
		{name: "push: free-text issuer name", body: push(set("issuer.name", "某某发证机关")), status: 400, code: licensehub.EINVALID, field: "issuer.name"},
		{name: "push: issuer name without the registry's suffix", body: push(set("issuer.name", "湖南省市场监督管理局")), status: 400, code: licensehub.EINVALID, field: "issuer.name"},
		{name: "push: unregistered authority (admin)", app: admin, body: push(set("issuer.code", demoHolder)), status: 400, code: licensehub.EINVALID, field: "issuer.code"},
		{name: "push: unregistered authority (issuer: not granted)", body: push(set("issuer.code", demoHolder)), status: 403, code: licensehub.EFORBIDDENAUTHORITY},
		{name: "push: area outside the authority's", body: push(set("area_code", "440100")), status: 400, code: licensehub.EINVALID, field: "area_code"},
		{name: "push: credit code face field of another company", body: push(set("fields.unified_social_credit_code", otherCompany)), status: 400, code: licensehub.EINVALID, field: "fields.unified_social_credit_code"},
		{name: "push: fields.name differs from holder.name", body: push(set("fields.name", "另一家有限公司")), status: 400, code: licensehub.EINVALID, field: "fields.name"},
		{name: "push: bad holder check digit", body: push(set("holder.code", "91350100M000100Y44")), status: 400, code: licensehub.EINVALID, field: "holder.code"},
		{name: "push: unknown license type", body: push(set("type_code", "11100000000013338W999")), status: 403, code: licensehub.EFORBIDDENTYPE},
		{name: "push: issue date in 1800", body: push(func(m map[string]any) { m["issue_date"], m["valid_from"] = "1800-01-01", "1800-01-01" }), status: 400, code: licensehub.EINVALID, field: "issue_date"},
		{name: "push: issue date in 2099", body: push(func(m map[string]any) { m["issue_date"], m["valid_from"] = "2099-01-01", "2099-01-01" }), status: 400, code: licensehub.EINVALID, field: "issue_date"},
		{name: "push: issue date not a date", body: push(set("issue_date", "yesterday")), status: 400, code: licensehub.EINVALID, field: "issue_date"},
		{name: "push: valid_from before issue_date", body: push(set("valid_from", day(today.AddDate(0, 0, -10)))), status: 400, code: licensehub.EINVALID, field: "valid_from"},
		{name: "push: valid_until before valid_from", body: push(set("valid_until", day(today.AddDate(0, 0, -1)))), status: 400, code: licensehub.EINVALID},
		{name: "push: already expired", body: push(func(m map[string]any) {
			m["issue_date"], m["valid_from"], m["valid_until"] = "2015-03-01", "2015-03-01", "2020-02-29"
		}), status: 400, code: licensehub.EINVALID, field: "valid_until"},
		// status changes
		{name: "status: op twice (suspend, revoke)", path: statusPath, body: []byte(`{"op":"suspend","op":"revoke","reason":"x"}`), status: 400, code: licensehub.EMALFORMED, field: "op"},
		{name: "status: op in another case", path: statusPath, body: []byte(`{"op":"suspend","OP":"revoke","reason":"x"}`), status: 400, code: licensehub.EMALFORMED, field: "OP"},
		{name: "status: suspend without a reason", path: statusPath, body: []byte(`{"op":"suspend"}`), status: 400, code: licensehub.EINVALID, field: "reason"},
		{name: "status: revoke with a blank reason", path: statusPath, body: []byte(`{"op":"revoke","reason":"  "}`), status: 400, code: licensehub.EINVALID, field: "reason"},
		{name: "status: reason of 501 characters", path: statusPath, body: []byte(`{"op":"suspend","reason":"` + strings.Repeat("因", 501) + `"}`), status: 400, code: licensehub.EINVALID, field: "reason"},
		{name: "status: reason with a bidi override", path: statusPath, body: []byte(`{"op":"suspend","reason":"违法\u202e经营"}`), status: 400, code: licensehub.EINVALID, field: "reason"},
		{name: "status: unknown op", path: statusPath, body: []byte(`{"op":"delete","reason":"x"}`), status: 400, code: licensehub.EINVALID, field: "op"},
		{name: "status: without Content-Type", path: statusPath, body: []byte(`{"op":"suspend","reason":"x"}`), hdr: ctype(""), status: 415, code: licensehub.EMEDIATYPE, field: "Content-Type"},
		{name: "status: restore a revoked license", path: "/v1/licenses/" + revoked + "/status", body: []byte(`{"op":"restore"}`), status: 409, code: licensehub.EILLEGALTRANSITION},
		{name: "status: suspend a revoked license", path: "/v1/licenses/" + revoked + "/status", body: []byte(`{"op":"suspend","reason":"再次暂扣"}`), status: 409, code: licensehub.EILLEGALTRANSITION},
		{name: "status: bad identifier", path: "/v1/licenses/1.2.156.3005.2.x/status", body: []byte(`{"op":"suspend","reason":"x"}`), status: 400, code: licensehub.EINVALID, field: "id"},
		// new versions
		{name: "versions: number twice", path: versionsPath, query: url.Values{"op": {"change"}}, body: raw(base, `"number":`, `"number":"1","number":`), status: 400, code: licensehub.EMALFORMED, field: "number"},
		{name: "versions: zero-width in holder name", path: versionsPath, query: url.Values{"op": {"change"}}, body: push(set("holder.name", "长沙\u200d样例")), status: 400, code: licensehub.EINVALID, field: "holder.name"},
		{name: "versions: free-text issuer name", path: versionsPath, query: url.Values{"op": {"renew"}}, body: push(set("issuer.name", "某局")), status: 400, code: licensehub.EINVALID, field: "issuer.name"},
		{name: "versions: of a revoked license", path: "/v1/licenses/" + revoked + "/versions", query: url.Values{"op": {"renew"}}, body: push(number("20230000405")), status: 409, code: licensehub.EILLEGALTRANSITION},
		// consents
		{name: "consent: unknown app", app: citizen, path: "/v1/consents", body: consent(func(m map[string]any) { m["app"] = "no-such-app" }), status: 400, code: licensehub.EINVALID, field: "app"},
		{name: "consent: until not a date-time", app: citizen, path: "/v1/consents", body: consent(func(m map[string]any) { m["until"] = "yesterday" }), status: 400, code: licensehub.EINVALID, field: "until"},
		{name: "consent: for more than a year", app: citizen, path: "/v1/consents", body: consent(func(m map[string]any) { m["until"] = today.AddDate(2, 0, 0).UTC().Format(time.RFC3339) }), status: 400, code: licensehub.EINVALID, field: "until"},
		{name: "consent: matter twice", app: citizen, path: "/v1/consents", body: raw(consent(nil), `"matter":`, `"matter":"x","matter":`), status: 400, code: licensehub.EMALFORMED, field: "matter"},
		{name: "consent: unknown member", app: citizen, path: "/v1/consents", body: consent(func(m map[string]any) { m["scope"] = "all" }), status: 400, code: licensehub.EMALFORMED, field: "scope"},
		{name: "consent: bad holder code", app: citizen, path: "/v1/consents", body: consent(func(m map[string]any) { m["holder_code"] = "91350100M000100Y44" }), status: 400, code: licensehub.EINVALID, field: "holder_code"},
		{name: "consent: without Content-Type", app: citizen, path: "/v1/consents", body: consent(nil), hdr: ctype("text/plain"), status: 415, code: licensehub.EMEDIATYPE, field: "Content-Type"},
		{name: "consent: revoke without holder", app: citizen, method: "DELETE", path: "/v1/consents/0123456789abcdef", status: 400, code: licensehub.EINVALID, field: "holder"},
		// materials
		{name: "materials: holder_name twice", app: approval, path: materialsPath, body: raw(materials(nil), `"holder_name":`, `"holder_name":"x","holder_name":`), status: 400, code: licensehub.EMALFORMED, field: "holder_name"},
		{name: "materials: invalid UTF-8 in an input", app: approval, path: materialsPath, body: raw(materials(nil), "长沙示范科技有限公司", "\xff\xfe"), status: 400, code: licensehub.EMALFORMED, field: "holder_name"},
		{name: "materials: input not text", app: approval, path: materialsPath, body: materials(func(m map[string]any) { m["inputs"] = map[string]any{"legal_representative_name": 5} }), status: 400, code: licensehub.EMALFORMED, field: "inputs.legal_representative_name"},
		{name: "materials: input of 201 characters", app: approval, path: materialsPath, body: materials(func(m map[string]any) {
			m["inputs"] = map[string]any{"legal_representative_name": strings.Repeat("名", 201)}
		}), status: 400, code: licensehub.EINVALID, field: "inputs.legal_representative_name"},
		{name: "materials: text/plain", app: approval, path: materialsPath, body: materials(nil), hdr: ctype("text/plain"), status: 415, code: licensehub.EMEDIATYPE, field: "Content-Type"},
		// certificates: the body
		{name: "certificate: params twice", app: approval, path: "/v1/certificates/identity", hdr: matterHdr, body: []byte(`{"params":{"id_number":"` + person + `"},"params":{}}`), status: 400, code: licensehub.EMALFORMED, field: "params"},
		{name: "certificate: invalid UTF-8 name", app: approval, path: "/v1/certificates/identity", hdr: matterHdr, body: []byte("{\"params\":{\"id_number\":\"" + person + "\",\"name\":\"\xff\xfe\xc3\x28\"}}"), status: 400, code: licensehub.EMALFORMED, field: "params.name"},
		// verify
		{name: "verify: not JSON", app: "", path: "/v1/verify", body: []byte("not a license"), hdr: ctype("application/json"), status: 400, code: licensehub.EMALFORMED, field: "body"},
		{name: "verify: member twice", app: "", path: "/v1/verify", body: raw(docBytes, `"signature":`, `"signature":{},"signature":`), hdr: ctype("application/json"), status: 400, code: licensehub.EMALFORMED, field: "signature"},
		{name: "verify: no Content-Type", app: "", path: "/v1/verify", body: docBytes, hdr: ctype(""), status: 415, code: licensehub.EMEDIATYPE, field: "Content-Type"},
		{name: "verify: empty", app: "", path: "/v1/verify", body: []byte{}, hdr: ctype("application/json"), status: 400, code: licensehub.EMALFORMED, field: "body"},
		// public routes and the request line
		{name: "keys: unknown key names no server path", app: "", method: "GET", path: "/v1/keys/zzzz", status: 404, code: licensehub.EKEYNOTFOUND},
		{name: "authorities: unknown code", app: "", method: "GET", path: "/v1/authorities/zzzz", status: 404, code: licensehub.ENOTFOUND, field: "code"},
		{name: "10 KB URL", app: "", method: "GET", path: "/v1/catalog/types", query: url.Values{"q": {strings.Repeat("x", 10<<10)}}, status: 414, code: licensehub.EURITOOLONG},
		{name: "audit: from not a date-time", app: "city-supervisor", method: "GET", path: "/v1/audit", query: url.Values{"from": {"yesterday"}}, status: 400, code: licensehub.EINVALID, field: "from"},
		// conversions
		{name: "conversion: no mapping", path: "/v1/conversions", body: []byte("a,b\n"), hdr: ctype("text/csv"), status: 400, code: licensehub.EINVALID, field: "mapping", upload: true},
		{name: "conversion: unknown mapping", path: "/v1/conversions", query: url.Values{"mapping": {"nope"}}, body: []byte("a,b\n"), hdr: ctype("text/csv"), status: 400, code: licensehub.EINVALID, field: "mapping", upload: true},
		{name: "conversion: bad format", path: "/v1/conversions", query: url.Values{"mapping": {demoMapping}, "format": {"doc"}}, body: []byte("a,b\n"), hdr: ctype("text/csv"), status: 400, code: licensehub.EINVALID, field: "format", upload: true},
		{name: "conversion: no SM3 of the file", path: "/v1/conversions", query: url.Values{"mapping": {demoMapping}}, body: []byte("a,b\n"), hdr: ctype("text/csv"), status: 400, code: licensehub.EINVALID, field: "sm3", upload: true},
		{name: "conversion: XLSX zip bomb", path: "/v1/conversions", query: url.Values{"mapping": {demoMapping}, "format": {"xlsx"}, "sm3": {hex.EncodeToString(sm3Sum(bomb))}},
			body: bomb, hdr: ctype("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"), status: 400, code: licensehub.EINVALID, field: "source", upload: true},
	}
	// certificates: every kind's parameter checks, before any upstream call
	for _, bp := range simtest.BadParams(person, company, time.Now()) {
		cases = append(cases, hostile{name: "certificate " + bp.Kind + ": " + bp.Field + " " + clippedParams(bp.Params), app: approval,
			path: "/v1/certificates/" + bp.Kind, hdr: matterHdr, body: jsonBody(t, map[string]any{"params": bp.Params}),
			status: 400, code: licensehub.EINVALID, field: bp.Field})
	}
	if len(cases) < 80 {
		t.Fatalf("%d cases; the acceptance asks for at least 80", len(cases))
	}
	for _, c := range cases {
		if c.app == "" && c.method == "" && !strings.HasPrefix(c.path, "/v1/verify") {
			c.app = issuer
		}
		if c.method == "" {
			c.method = "POST"
		}
		if c.path == "" {
			c.path = "/v1/licenses"
		}
		t.Run(c.name, func(t *testing.T) { c.run(t, h) })
	}

	// What the refusals must not have done.
	t.Run("the duplicate-op license is still valid", func(t *testing.T) {
		status, b := h.call(t, issuer, "GET", "/v1/licenses/"+valid, nil, nil, nil)
		var v struct{ Status string }
		if json.Unmarshal(b, &v); status != 200 || v.Status != "01" {
			t.Fatalf("%d status %q: %s", status, v.Status, clipped(b))
		}
	})
	t.Run("an identity check with a wrong name discloses nothing", func(t *testing.T) {
		status, b := h.call(t, approval, "POST", "/v1/certificates/identity", nil,
			jsonBody(t, map[string]any{"params": map[string]string{"id_number": person, "name": "王不对"}}), matterHdr)
		if status != 201 || !bytes.Contains(b, []byte(`"name_match":false`)) {
			t.Fatalf("%d %s", status, clipped(b))
		}
		for _, leak := range []string{sim.PersonName(person), "birth", "address"} {
			if bytes.Contains(b, []byte(leak)) {
				t.Errorf("the certificate discloses %q: %s", leak, b)
			}
		}
	})
	t.Run("a wrong name is a missing material", func(t *testing.T) {
		status, b := h.call(t, citizen, "POST", "/v1/consents", nil, consent(nil), nil)
		var c struct{ Token string }
		if json.Unmarshal(b, &c); status != 201 || c.Token == "" {
			t.Fatalf("consent: %d %s", status, b)
		}
		status, b = h.call(t, approval, "POST", materialsPath, nil, materials(func(m map[string]any) {
			m["inputs"].(map[string]any)["legal_representative_name"] = "王不对"
		}), http.Header{"X-Hub-Consent": {c.Token}})
		var out struct {
			Materials []struct{ Name, Kind, Certificate, State string }
			Missing   []string
		}
		if err := json.Unmarshal(b, &out); err != nil || status != 200 {
			t.Fatalf("materials: %d %s", status, clipped(b))
		}
		var mismatched string
		for _, m := range out.Materials {
			if m.State == "mismatch" {
				mismatched = m.Name
			}
		}
		if mismatched == "" || !slices.Contains(out.Missing, mismatched) {
			t.Errorf("no material mismatch listed as missing: %s", b)
		}
	})
	t.Run("a stalled body answers 408", func(t *testing.T) {
		conn, err := net.Dial("tcp", strings.TrimPrefix(h.base, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "POST /v1/verify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"a\":")
		// The hub's read timeout (3s) ends the wait; this deadline only
		// bounds the test if it never answers.
		conn.SetReadDeadline(time.Now().Add(60 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 408 || !bytes.Contains(b, []byte(`"code":"`+licensehub.EREQUESTTIMEOUT+`"`)) {
			t.Errorf("%d %s", resp.StatusCode, b)
		}
	})
}

// pushBodyHolderName is the holder name of a push body.
func pushBodyHolderName(t *testing.T, body []byte) string {
	var m struct{ Holder struct{ Name string } }
	if err := json.Unmarshal(body, &m); err != nil || m.Holder.Name == "" {
		t.Fatalf("push body without holder name: %v", err)
	}
	return m.Holder.Name
}

func clippedParams(p map[string]string) string {
	b, _ := json.Marshal(p)
	if len(b) > 60 {
		return string(b[:60]) + "…"
	}
	return string(b)
}

// zipBomb is an XLSX workbook of some 100 KB whose sheet unpacks to 50 MiB.
func zipBomb(t *testing.T) []byte {
	f := excelize.NewFile()
	defer f.Close()
	f.SetSheetRow("Sheet1", "A1", &[]any{"注册号", "企业名称"})
	var book bytes.Buffer
	if _, err := f.WriteTo(&book); err != nil {
		t.Fatal(err)
	}
	return testenv.ZipWith(t, book.Bytes(), testenv.ZipPart{Name: "xl/worksheets/sheet1.xml", Data: "<row/>", Repeat: 50 << 20 / 6})
}

func sm3Sum(b []byte) []byte {
	s := sm3.Sum(b)
	return s[:]
}
