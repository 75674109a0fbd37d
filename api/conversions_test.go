package api

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm3"
	"github.com/xuri/excelize/v2"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/audit"
	"github.com/licensehub/licensehub/auth"
	"github.com/licensehub/licensehub/client"
	"github.com/licensehub/licensehub/convert"
	"github.com/licensehub/licensehub/convert/runner"
	"github.com/licensehub/licensehub/ident"
	"github.com/licensehub/licensehub/internal/testenv"
)

const (
	convType      = "11100000000013338W011"
	convAuthority = "11430000006122244L"
)

// A small legacy business register: Chinese headers, legacy dates.
const testMapping = `name: test-register
description: a test register of business licenses
license_type: "` + convType + `"
authority: {name: 湖南省市场监督管理局, code: "` + convAuthority + `"}
area_code: "430100"
format: csv
` + testMappingColumns + `default_validity: long_term
`

// A mapping without a format: uploads must say it.
const testMappingNoFormat = `name: test-no-format
license_type: "` + convType + `"
area_code: "430100"
authority: {name: 湖南省市场监督管理局, code: "` + convAuthority + `"}
` + testMappingColumns

// testMappingColumns maps the test register's columns (both mappings).
const testMappingColumns = `columns:
  number: 注册号
  holder.name: 企业名称
  holder.code: 统一社会信用代码
  issue_date: 发照日期
  fields.unified_social_credit_code: 统一社会信用代码
  fields.name: 企业名称
  fields.entity_type: 类型
  fields.legal_representative: 法定代表人
  fields.established_date: 成立日期
  fields.business_term_to: 营业期限至
  fields.address: 住所
  fields.business_scope: 经营范围
  fields.registration_authority: 登记机关
fixed:
  holder.code_type: "001"
`

func creditCodeFor(t testing.TB, n int) string {
	t.Helper()
	first := fmt.Sprintf("91430100MA4L%05d", n)
	c, err := ident.CreditCodeCheck(first)
	if err != nil {
		t.Fatal(err)
	}
	return first + string(c)
}

// register is the test file: five good rows, one repeating an earlier
// row's number, one with a wrong check character, one with a date that
// does not exist. Lines 2..9 (line 1 is the header).
func register(t testing.TB) (file []byte, badLines map[int]string) {
	t.Helper()
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.Write([]string{"注册号", "企业名称", "统一社会信用代码", "类型", "法定代表人", "成立日期", "营业期限至", "住所", "经营范围", "登记机关", "发照日期"})
	row := func(i int, number, code, date string) {
		w.Write([]string{number, fmt.Sprintf("长沙存量%02d有限公司", i), code, "有限责任公司", "王五", date, "长期",
			"长沙市天心区存量路" + fmt.Sprint(i) + "号", "软件开发", "长沙市市场监督管理局", date})
	}
	for i := 1; i <= 5; i++ {
		row(i, fmt.Sprintf("4301000000%04d", i), creditCodeFor(t, i), "2015年3月4日")
	}
	row(6, "43010000000002", creditCodeFor(t, 6), "2015年3月4日") // line 7: number of line 3
	bad := creditCodeFor(t, 7)
	bad = bad[:17] + map[bool]string{true: "1", false: "0"}[bad[17] == '0']
	row(7, "43010000000007", bad, "2015年3月4日")                  // line 8
	row(8, "43010000000008", creditCodeFor(t, 8), "2015年2月30日") // line 9
	w.Flush()
	return b.Bytes(), map[int]string{8: convert.RejectBadHolderCode, 9: convert.RejectBadDate}
}

// conversionMembers: converter may run conversions of the test type and
// authority; elsewhere only of another authority; viewer has a role
// without conversion.run.
const conversionMembers = `members:
  - app_id: converter
    name: converter
    department: test
    roles: [issuing_department]
    secret: %s
    grants:
      - operations: [conversion.run, license.read]
        license_types: ["` + convType + `"]
        authorities: ["` + convAuthority + `"]
    rate_limit: {requests: 1000, per: 1s}
  - app_id: elsewhere
    name: elsewhere
    department: test
    roles: [issuing_department]
    secret: %s
    grants:
      - operations: [conversion.run]
        authorities: ["91350100M000100Y43"]
  - app_id: viewer
    name: viewer
    department: test
    roles: [supervisor]
    secret: %s
    grants:
      - operations: [audit.read]
`

type convHub struct {
	*harness
	objects licensehub.ObjectStore
	trail   *audit.Trail
}

// testUnzipLimit is conversion.xlsx_max_unzipped in these tests.
const testUnzipLimit = 1 << 20

// startConversions serves the conversion routes on a real library and a
// real runner (filesystem store, in-process KV), the runner serving jobs
// until the test ends.
func startConversions(t *testing.T, maxUpload int64) *convHub {
	t.Helper()
	tl := newTestLibrary(t)
	kv, objects, cat, lib := tl.kv, tl.objects, tl.cat, tl.lib
	dir := t.TempDir()
	for name, text := range map[string]string{"test-register.yaml": testMapping, "test-no-format.yaml": testMappingNoFormat} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	mappings, err := convert.LoadMappings(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mappings {
		if err := m.BindCatalog(cat); err != nil {
			t.Fatal(err)
		}
	}
	run, err := runner.New(runner.Config{Library: lib, Objects: objects, KV: kv, Mappings: mappings,
		Workers: 4, CheckpointRows: 2, CheckpointEvery: 50 * time.Millisecond, LeaseTTL: 5 * time.Second,
		Owner: "test-instance", OpTimeout: 5 * time.Second, Logger: slog.New(slog.DiscardHandler), XLSXMaxUnzipped: testUnzipLimit})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() { defer close(served); run.Serve(ctx, 20*time.Millisecond) }()
	t.Cleanup(func() { stop(); <-served })

	s := func(app string) string { return string(secretOf(app)) }
	reg := loadRegistry(t, fmt.Sprintf(conversionMembers, s("converter"), s("elsewhere"), s("viewer")))
	trail := newTrail(t, kv)
	h := startWith(t, Options{Auth: auth.NewAuthenticator(reg, kv), Limiter: auth.NewLimiter(kv), Audit: trail,
		Library: lib, Conversions: &Conversions{Runner: run, Mappings: mappings, MaxUpload: maxUpload}}, nil)
	return &convHub{harness: h, objects: objects, trail: trail}
}

func sm3Hex(b []byte) string {
	sum := sm3.Sum(b)
	return hex.EncodeToString(sum[:])
}

// uploadOpts vary an upload from the well-formed one.
type uploadOpts struct {
	chunked    bool
	signedBody bool   // sign over the body like other routes (wrong here)
	digest     string // the sm3 parameter; "" for the body's, "-" for none
}

// upload sends file as app, signed the way the upload route wants.
func (h *convHub) upload(t *testing.T, app string, query url.Values, file []byte, o uploadOpts) (*http.Response, []byte) {
	t.Helper()
	q := url.Values{}
	for k, v := range query {
		q[k] = v
	}
	switch o.digest {
	case "":
		q.Set("sm3", sm3Hex(file))
	case "-":
	default:
		q.Set("sm3", o.digest)
	}
	var body io.Reader = bytes.NewReader(file)
	if o.chunked {
		body = io.MultiReader(body) // no length: sent chunked
	}
	req, err := http.NewRequest("POST", h.url+"/v1/conversions?"+q.Encode(), body)
	if err != nil {
		t.Fatal(err)
	}
	var signed []byte
	if o.signedBody {
		signed = file
	}
	if err := client.SignRequest(req, signed, client.Credentials{AppID: app, Secret: secretOf(app)}, time.Now()); err != nil {
		t.Fatal(err)
	}
	return send(t, req)
}

// waitDone polls the job until it is done (or failed).
func (h *convHub) waitDone(t *testing.T, id string) runner.State {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, b := h.call(t, "converter", "GET", "/v1/conversions/"+id, "", time.Now(), nil)
		if resp.StatusCode != 200 {
			t.Fatalf("state: %d %s", resp.StatusCode, b)
		}
		var st runner.State
		if err := json.Unmarshal(b, &st); err != nil {
			t.Fatalf("state is not JSON: %s", b)
		}
		if st.State == runner.StateDone || st.State == runner.StateFailed {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s not done after 30s: %s", id, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// storedUnder counts the objects under prefix.
func (h *convHub) storedUnder(t *testing.T, prefix string) int {
	t.Helper()
	n := 0
	if err := h.objects.List(context.Background(), prefix, func(licensehub.ObjectInfo) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestConversionOverHTTP(t *testing.T) {
	file, badLines := register(t)
	const maxUpload = 3 << 20 // above server.body_limit (1MiB), which does not apply to uploads
	h := startConversions(t, maxUpload)
	mapping := url.Values{"mapping": {"test-register"}}

	// Refusals first: none of them may leave anything in the store.
	big := append(bytes.Repeat([]byte("x"), maxUpload), file...)
	refusals := []struct {
		name   string
		app    string
		query  url.Values
		file   []byte
		o      uploadOpts
		status int
		code   string
		field  string
	}{
		{"no mapping", "converter", url.Values{}, file, uploadOpts{}, 400, licensehub.EINVALID, "mapping"},
		{"unknown mapping", "converter", url.Values{"mapping": {"nope"}}, file, uploadOpts{}, 400, licensehub.EINVALID, "mapping"},
		{"format required", "converter", url.Values{"mapping": {"test-no-format"}}, file, uploadOpts{}, 400, licensehub.EINVALID, "format"},
		{"unknown format", "converter", url.Values{"mapping": {"test-register"}, "format": {"xls"}}, file, uploadOpts{}, 400, licensehub.EINVALID, "format"},
		{"no sm3", "converter", mapping, file, uploadOpts{digest: "-"}, 400, licensehub.EINVALID, "sm3"},
		{"sm3 not hex", "converter", mapping, file, uploadOpts{digest: "xyz"}, 400, licensehub.EINVALID, "sm3"},
		{"file differs from its sm3", "converter", mapping, file, uploadOpts{digest: sm3Hex([]byte("other"))}, 400, licensehub.EINVALID, "sm3"},
		{"file differs from its sm3, chunked", "converter", mapping, file, uploadOpts{digest: sm3Hex([]byte("other")), chunked: true}, 400, licensehub.EINVALID, "sm3"},
		{"empty file", "converter", mapping, []byte{}, uploadOpts{}, 400, licensehub.EINVALID, "body"},
		{"over max_upload", "converter", mapping, big, uploadOpts{}, 413, licensehub.EBODYTOOLARGE, "body"},
		{"over max_upload, chunked", "converter", mapping, big, uploadOpts{chunked: true}, 413, licensehub.EBODYTOOLARGE, "body"},
		{"other authority", "elsewhere", mapping, file, uploadOpts{}, 403, licensehub.EFORBIDDENAUTHORITY, ""},
		{"role without conversion.run", "viewer", mapping, file, uploadOpts{}, 403, licensehub.EFORBIDDENROLE, ""},
		{"signed over the body", "converter", mapping, file, uploadOpts{signedBody: true}, 401, licensehub.EAUTHBADSIG, ""},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			resp, b := h.upload(t, tt.app, tt.query, tt.file, tt.o)
			e := decodeError(t, b)
			if resp.StatusCode != tt.status || e.Code != tt.code || tt.field != "" && e.Details["field"] != tt.field {
				t.Errorf("%d %s, want %d %s field %q", resp.StatusCode, b, tt.status, tt.code, tt.field)
			}
			if tt.code == licensehub.EAUTHBADSIG && e.Details["hint"] == nil {
				t.Errorf("no hint at the signature rule of the upload: %s", b)
			}
		})
	}
	t.Run("xlsx zip bomb", func(t *testing.T) {
		f := excelize.NewFile()
		f.SetSheetRow("Sheet1", "A1", &[]any{"注册号", "企业名称"})
		var book bytes.Buffer
		if _, err := f.WriteTo(&book); err != nil {
			t.Fatal(err)
		}
		f.Close()
		// 50 MiB of sheet XML in a zip of some 100 KiB.
		bomb := testenv.ZipWith(t, book.Bytes(), testenv.ZipPart{Name: "xl/worksheets/sheet1.xml", Data: "<row/>", Repeat: 50 << 20 / 6})
		resp, b := h.upload(t, "converter", url.Values{"mapping": {"test-register"}, "format": {"xlsx"}}, bomb, uploadOpts{})
		e := decodeError(t, b)
		if resp.StatusCode != 400 || e.Code != licensehub.EINVALID || e.Details["field"] != "source" ||
			e.Details["limit_bytes"] != float64(testUnzipLimit) || !strings.Contains(e.Message, "unpacks to more than 1 MiB") {
			t.Errorf("%d %s, want 400 %s field source naming the 1 MiB limit", resp.StatusCode, b, licensehub.EINVALID)
		}
	})
	if n := h.storedUnder(t, "conversions/"); n != 0 {
		t.Fatalf("refused uploads left %d objects under conversions/", n)
	}

	// Accepted, sized and chunked: each converts the same file the same way.
	var first string
	for _, chunked := range []bool{false, true} {
		t.Run(fmt.Sprintf("chunked=%v", chunked), func(t *testing.T) {
			resp, b := h.upload(t, "converter", mapping, file, uploadOpts{chunked: chunked})
			if resp.StatusCode != 202 {
				t.Fatalf("upload: %d %s", resp.StatusCode, b)
			}
			var job runner.Job
			if err := json.Unmarshal(b, &job); err != nil || !runner.ValidID(job.ID) || job.Mapping != "test-register" ||
				job.Format != "csv" || job.CreatedBy != "converter" {
				t.Fatalf("job %s (%v)", b, err)
			}
			if loc := resp.Header.Get("Location"); loc != "/v1/conversions/"+job.ID {
				t.Errorf("Location %q", loc)
			}
			if job.Size != int64(len(file)) {
				t.Errorf("job size %d, want %d", job.Size, len(file))
			}
			st := h.waitDone(t, job.ID)
			want := runner.Counts{Read: 8, Converted: 5, Duplicates: 1, Rejected: 2,
				RejectedBy: map[string]int{convert.RejectBadHolderCode: 1, convert.RejectBadDate: 1}}
			if !chunked {
				first = job.ID
			} else {
				// The second job finds its five licenses made by the first.
				want.Converted, want.Duplicates = 0, 6
			}
			if st.State != runner.StateDone || st.Counts.Read != want.Read || st.Counts.Converted != want.Converted ||
				st.Counts.Duplicates != want.Duplicates || st.Counts.Rejected != want.Rejected ||
				fmt.Sprint(st.Counts.RejectedBy) != fmt.Sprint(want.RejectedBy) {
				t.Errorf("state %s, counts %+v, want done with %+v (error %q)", st.State, st.Counts, want, st.Error)
			}

			resp, b = h.call(t, "converter", "GET", "/v1/conversions/"+job.ID+"/rejects", "", time.Now(), nil)
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/csv; charset=utf-8" {
				t.Fatalf("rejects: %d %q %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
			}
			records, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
			if err != nil || len(records) == 0 || strings.Join(records[0], ",") != "line,field,code,message,number" {
				t.Fatalf("rejects CSV %q (%v)", b, err)
			}
			got := map[int]string{}
			for _, r := range records[1:] {
				var line int
				fmt.Sscan(r[0], &line)
				if r[2] == convert.RejectBadHolderCode || r[2] == convert.RejectBadDate {
					got[line] = r[2]
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(badLines) {
				t.Errorf("rejects name lines %v, want %v:\n%s", got, badLines, b)
			}
		})
	}
	if first == "" {
		t.Fatal("no accepted job")
	}
	t.Run("larger than server.body_limit", func(t *testing.T) {
		padded := append(append([]byte{}, file...), bytes.Repeat([]byte(",,,,,,,,,,\n"), 200_000)...) // empty records are no rows
		for _, chunked := range []bool{false, true} {
			resp, b := h.upload(t, "converter", mapping, padded, uploadOpts{chunked: chunked})
			var job runner.Job
			if resp.StatusCode != 202 || json.Unmarshal(b, &job) != nil || job.Size != int64(len(padded)) {
				t.Fatalf("chunked=%v: %d %s", chunked, resp.StatusCode, b)
			}
			if st := h.waitDone(t, job.ID); st.State != runner.StateDone || st.Counts.Read != 8 {
				t.Errorf("chunked=%v: %s with %+v (%s)", chunked, st.State, st.Counts, st.Error)
			}
		}
	})

	// Reading jobs: the same authorisation as the upload.
	reads := []struct {
		name, app, path string
		status          int
		code, field     string
	}{
		{"state", "converter", "/v1/conversions/" + first, 200, "", ""},
		{"unknown job", "converter", "/v1/conversions/" + strings.Repeat("0", 32), 404, licensehub.ENOTFOUND, "id"},
		{"unknown job's rejects", "converter", "/v1/conversions/" + strings.Repeat("0", 32) + "/rejects", 404, licensehub.ENOTFOUND, "id"},
		{"malformed id", "converter", "/v1/conversions/..%2Fsecret", 400, licensehub.EINVALID, "id"},
		{"other authority's job", "elsewhere", "/v1/conversions/" + first, 403, licensehub.EFORBIDDENAUTHORITY, ""},
		{"other authority's rejects", "elsewhere", "/v1/conversions/" + first + "/rejects", 403, licensehub.EFORBIDDENAUTHORITY, ""},
		{"role without conversion.run", "viewer", "/v1/conversions/" + first, 403, licensehub.EFORBIDDENROLE, ""},
	}
	for _, tt := range reads {
		t.Run(tt.name, func(t *testing.T) {
			resp, b := h.call(t, tt.app, "GET", tt.path, "", time.Now(), nil)
			if resp.StatusCode != tt.status {
				t.Fatalf("%d %s, want %d", resp.StatusCode, b, tt.status)
			}
			if tt.status == 200 {
				return
			}
			if e := decodeError(t, b); e.Code != tt.code || tt.field != "" && e.Details["field"] != tt.field {
				t.Errorf("%s, want %s field %q", b, tt.code, tt.field)
			}
		})
	}

	// Every call was audited, refusals included, with no holder.
	page, err := h.trail.Query(context.Background(), audit.Filter{Limit: audit.MaxQueryLimit})
	if err != nil {
		t.Fatal(err)
	}
	results := map[string]int{}
	for _, r := range page.Records {
		if r.Operation != auth.OpConversionRun {
			t.Errorf("record of %s: %+v", r.Operation, r)
		}
		if r.HolderHash != "" || r.HolderMasked != "" {
			t.Errorf("record with a holder: %+v", r)
		}
		results[r.AppID+" "+r.Result]++
	}
	for _, want := range []string{"converter OK", "converter " + licensehub.EINVALID, "converter " + licensehub.EBODYTOOLARGE,
		"converter " + licensehub.ENOTFOUND, "elsewhere " + licensehub.EFORBIDDENAUTHORITY, "viewer " + licensehub.EFORBIDDENROLE} {
		if results[want] == 0 {
			t.Errorf("no audit record %q; have %v", want, results)
		}
	}
	if n := results["converter OK"]; n < 7 { // 2 uploads, 2 polls at least, 2 rejects, 1 state
		t.Errorf("%d successful calls audited, want at least 7", n)
	}
}
