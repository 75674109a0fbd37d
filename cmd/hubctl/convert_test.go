package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm3"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/convert/runner"
	"github.com/licensehub/licensehub/ident"
	"github.com/licensehub/licensehub/internal/testenv"
	"github.com/licensehub/licensehub/internal/testenv/testkeys"
	"github.com/licensehub/licensehub/license"
	"github.com/licensehub/licensehub/signing"
	miniostore "github.com/licensehub/licensehub/store/minio"
)

const acceptanceMapping = `name: acceptance-register
description: 20,000-row test register (UTF-8 CSV)
` + testenv.RegisterMappingBody + `date_formats: ["2006-01-02"]
`

// register is a generated legacy register and what converting it gives.
type register struct {
	csv        []byte
	read       int
	converted  map[string]int // number → the line whose row makes its license
	duplicates int
	rejects    map[int]string // line → reject code
}

// makeRegister writes n rows (line i+1 for row i): every 500th (from
// 250) repeats the number of the row 100 lines earlier (a duplicate: the
// earlier line wins), every 379th has a holder code with a wrong check
// character, every 613th a date that does not exist, every 1999th the
// wrong number of fields.
func makeRegister(n int) *register {
	reg := &register{read: n, converted: map[string]int{}, rejects: map[int]string{}}
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.Write([]string{"注册号", "企业名称", "统一社会信用代码", "发证日期", "企业类型", "法定代表人", "成立日期",
		"营业期限至", "住所", "经营范围", "登记机关"})
	const alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
	for i := 1; i <= n; i++ {
		line := i + 1
		number := fmt.Sprintf("AC%09d", i)
		if i%500 == 250 {
			number = fmt.Sprintf("AC%09d", i-100)
		}
		first := fmt.Sprintf("91430100%09d", i)
		c, _ := ident.CreditCodeCheck(first)
		code := first + string(c)
		issued := fmt.Sprintf("%d-%02d-%02d", 2010+i%10, 1+i%12, 1+i%28)
		switch {
		case i%1999 == 0:
			w.Write([]string{number, "缺列企业"})
			reg.rejects[line] = "MALFORMED_ROW"
			continue
		case i%379 == 0:
			code = first + string(alphabet[(strings.IndexByte(alphabet, c)+1)%31])
			reg.rejects[line] = "BAD_HOLDER_CODE"
		case i%613 == 0:
			issued = "2015-02-30"
			reg.rejects[line] = "BAD_DATE"
		}
		w.Write([]string{number, fmt.Sprintf("验收企业%d有限公司", i), code, issued, "有限责任公司", "张三", issued,
			"长期", fmt.Sprintf("长沙市岳麓区验收路%d号", i), "软件开发", "长沙市市场监督管理局"})
		switch {
		case reg.rejects[line] != "":
		case reg.converted[number] != 0:
			reg.duplicates++
		default:
			reg.converted[number] = line
		}
	}
	w.Flush()
	reg.csv = b.Bytes()
	return reg
}

// buildHubctl compiles hubctl into dir.
func buildHubctl(t testing.TB, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "hubctl")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// convertHubConfig writes a hub configuration on the test MinIO (a fresh
// bucket) and Redis (a fresh prefix, removed at the end).
func convertHubConfig(t *testing.T, dir string) (path string, objects *miniostore.Store) {
	t.Helper()
	mio := testenv.RequireMinIO(t)
	redisURL := testenv.RequireRedis(t)
	bucket := mio.Bucket(t)
	prefix := testenv.Name(t) + ":"
	path = testenv.WriteHubConfig(t, testenv.HubConfig{Dir: dir, Keys: hubKeys(t, dir), MinIO: &mio, Bucket: bucket,
		RedisURL: redisURL, RedisPrefix: prefix})
	var err error
	objects, err = miniostore.Open(t.Context(), miniostore.Config{Endpoint: mio.Endpoint, AccessKey: mio.AccessKey,
		SecretKey: mio.SecretKey, Bucket: bucket})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		objects.Close()
		testenv.CleanRedisPrefix(t, redisURL, prefix)
	})
	return path, objects
}

// hubKeys generates the test authority's signing key in dir/keys and
// returns that directory.
func hubKeys(t testing.TB, dir string) string {
	t.Helper()
	keys := filepath.Join(dir, "keys")
	now := time.Now()
	testkeys.Generate(t, keys, now.Add(-time.Hour), now.AddDate(1, 0, 0), "11430000006122244L")
	return keys
}

// hubctlCmd is hubctl with the environment stripped of HUB_* variables
// (the configuration file says everything).
func hubctlCmd(bin string, args ...string) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HUB_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	return cmd
}

// TestConvertKilledAndRestarted is the acceptance test of stock
// conversion: kill -9 the converter in the middle of a 20,000-row job,
// start it again: the final counts are exact and no license exists twice;
// every converted license names this job and its source line, each line
// once.
func TestConvertKilledAndRestarted(t *testing.T) {
	dir := t.TempDir()
	cfgPath, objects := convertHubConfig(t, dir)
	bin := buildHubctl(t, dir)
	reg := makeRegister(20_000)
	file := filepath.Join(dir, "register.csv")
	mapping := filepath.Join(dir, "acceptance-register.yaml")
	for p, data := range map[string][]byte{file: reg.csv, mapping: []byte(acceptanceMapping)} {
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h := sm3.New()
	h.Write([]byte("acceptance-register\x00"))
	h.Write(reg.csv)
	jobID := hex.EncodeToString(h.Sum(nil)[:16])
	args := []string{"convert", "--config", cfgPath, "--mapping", mapping, "--workers", "16", file}
	start := time.Now()

	// First run: killed once several thousand licenses exist.
	var out1, err1 bytes.Buffer
	first := hubctlCmd(bin, args...)
	first.Stdout, first.Stderr = &out1, &err1
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- first.Wait() }()
	deadline := time.Now().Add(90 * time.Second)
	for n := 0; n < 5000; {
		select {
		case err := <-exited:
			t.Fatalf("hubctl ended before it was killed (%d licenses): %v\n%s%s", n, err, out1.String(), err1.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			first.Process.Kill()
			<-exited // the buffers are written until Wait returns
			t.Fatalf("only %d licenses after 90s\n%s", n, err1.String())
		}
		n = countObjects(t, objects, "licenses/")
	}
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-exited
	killedAt := countObjects(t, objects, "licenses/")
	t.Logf("killed after %s with %d licenses", time.Since(start).Round(time.Millisecond), killedAt)
	if killedAt >= len(reg.converted) {
		t.Fatalf("the job was complete when killed (%d licenses)", killedAt)
	}

	// Second run: takes the dead process's lease over and finishes.
	second := hubctlCmd(bin, append(args, "--quiet")...)
	var out2, err2 bytes.Buffer
	second.Stdout, second.Stderr = &out2, &err2
	if err := second.Run(); err != nil {
		t.Fatalf("second run: %v\n%s%s", err, out2.String(), err2.String())
	}
	t.Logf("second run done after %s in all\n%s%s", time.Since(start).Round(time.Millisecond), out2.String(), err2.String())
	if !strings.Contains(err2.String(), "took job "+jobID+" over") {
		t.Errorf("the second run did not take the killed run's lease over:\n%s", err2.String())
	}

	// The report's counts are the register's.
	rc, _, err := objects.Get(t.Context(), "conversions/"+jobID+"/report.json")
	if err != nil {
		t.Fatalf("report.json of job %s: %v", jobID, err)
	}
	var report runner.State
	err = json.NewDecoder(rc).Decode(&report)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	byCode := map[string]int{}
	for _, code := range reg.rejects {
		byCode[code]++
	}
	c := report.Counts
	if report.State != runner.StateDone || c.Read != reg.read || c.Converted != len(reg.converted) ||
		c.Duplicates != reg.duplicates || c.Rejected != len(reg.rejects) || fmt.Sprint(c.RejectedBy) != fmt.Sprint(byCode) {
		t.Errorf("report: %s %s\nwant read %d, converted %d, duplicates %d, rejected %d %v", report.State, c.Summary(),
			reg.read, len(reg.converted), reg.duplicates, len(reg.rejects), byCode)
	}
	for _, want := range []string{fmt.Sprintf("converted   %10d", len(reg.converted)), "hubctl convert rejects " + jobID} {
		if !strings.Contains(out2.String(), want) {
			t.Errorf("the printed report lacks %q:\n%s", want, out2.String())
		}
	}

	// One license object per converted number, made by this job at its
	// line; each line once.
	lines := readProvenance(t, objects)
	if len(lines) != c.Converted {
		t.Errorf("%d license objects, the report says %d converted", len(lines), c.Converted)
	}
	seenLine := map[int]bool{}
	for number, p := range lines {
		if p.Batch != jobID || p.Kind != license.ProvenanceStock || p.Source != "acceptance-register" {
			t.Errorf("license %s: provenance %+v", number, p)
		}
		if want := reg.converted[number]; p.SourceLine != want {
			t.Errorf("license %s from line %d, want %d", number, p.SourceLine, want)
		}
		if seenLine[p.SourceLine] {
			t.Errorf("line %d made two licenses", p.SourceLine)
		}
		seenLine[p.SourceLine] = true
	}

	// hubctl convert rejects: every rejected line with its code.
	var rejOut, rejErr bytes.Buffer
	rej := hubctlCmd(bin, "convert", "rejects", "--config", cfgPath, jobID)
	rej.Stdout, rej.Stderr = &rejOut, &rejErr
	if err := rej.Run(); err != nil {
		t.Fatalf("convert rejects: %v\n%s", err, rejErr.String())
	}
	recs, err := csv.NewReader(&rejOut).ReadAll()
	if err != nil || len(recs) == 0 || strings.Join(recs[0], ",") != "line,field,code,message,number" {
		t.Fatalf("rejects CSV: %v %q", err, recs)
	}
	got := map[int]string{}
	last := 0
	for _, r := range recs[1:] {
		var line int
		fmt.Sscan(r[0], &line)
		if line <= last {
			t.Errorf("rejects out of line order at %d", line)
		}
		last = line
		got[line] = r[2]
	}
	if fmt.Sprint(got) != fmt.Sprint(reg.rejects) {
		t.Errorf("rejects:\n got %v\nwant %v", got, reg.rejects)
	}
	t.Logf("acceptance test took %s", time.Since(start).Round(time.Millisecond))
}

// countObjects counts the objects under prefix.
func countObjects(t testing.TB, s licensehub.ObjectStore, prefix string) int {
	t.Helper()
	n := 0
	if err := s.List(t.Context(), prefix, func(licensehub.ObjectInfo) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

// readProvenance reads every license object (16 at a time) and returns
// its provenance by license number; a number stored twice fails.
func readProvenance(t testing.TB, s licensehub.ObjectStore) map[string]license.Provenance {
	t.Helper()
	var keys []string
	if err := s.List(t.Context(), "licenses/", func(oi licensehub.ObjectInfo) error {
		keys = append(keys, oi.Key)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	out := map[string]license.Provenance{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	ch := make(chan string)
	for range 16 {
		wg.Go(func() {
			for key := range ch {
				rc, _, err := s.Get(context.Background(), key)
				if err != nil {
					t.Error(err)
					continue
				}
				raw, err := io.ReadAll(rc)
				rc.Close()
				if err != nil {
					t.Error(err)
					continue
				}
				doc, err := signing.ParseDocument(raw)
				if err != nil {
					t.Error(err)
					continue
				}
				var lic license.License
				if err := json.Unmarshal(doc.Body, &lic); err != nil || lic.Provenance == nil {
					t.Errorf("%s: %v (provenance %v)", key, err, lic.Provenance)
					continue
				}
				mu.Lock()
				if _, dup := out[lic.Number]; dup {
					t.Errorf("license number %s stored twice", lic.Number)
				}
				out[lic.Number] = *lic.Provenance
				mu.Unlock()
			}
		})
	}
	for _, k := range keys {
		ch <- k
	}
	close(ch)
	wg.Wait()
	return out
}

// TestConvertUsage: usage errors exit 2 before anything is opened.
func TestConvertUsage(t *testing.T) {
	file := filepath.Join(t.TempDir(), "r.csv")
	if err := os.WriteFile(file, []byte("a\n1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no file", []string{"convert", "--mapping", "m"}, "name one legacy file"},
		{"no mapping", []string{"convert", file}, "--mapping is required"},
		{"two files", []string{"convert", "--mapping", "m", file, file}, "name one legacy file"},
		{"missing file", []string{"convert", "--mapping", "m", file + ".nope"}, "not a readable file"},
		{"rejects without dry run", []string{"convert", "--mapping", "m", "--rejects", "x.csv", file}, "--rejects is for --dry-run"},
		{"bad workers", []string{"convert", "--mapping", "m", "--workers", "-1", file}, "--workers"},
		{"unknown flag", []string{"convert", "--frobnicate", file}, "flag provided but not defined"},
		{"rejects without id", []string{"convert", "rejects"}, "name one job ID"},
		{"rejects bad id", []string{"convert", "rejects", "../x"}, "name one job ID"},
		{"status bad id", []string{"convert", "status", "abc"}, "name one job ID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, stderr := hubctl(t, tt.args...)
			if code != 2 || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stderr %q (want 2 and %q); stdout %q", code, stderr, tt.want, out)
			}
		})
	}
}

// TestConvertDryRunEmbedded: hubctl convert --dry-run on the embedded
// stores prints the report, writes the rejects where told and stores
// nothing; the real run then converts what the dry run predicted, and a
// second run of the same command finds the job done.
func TestConvertDryRunEmbedded(t *testing.T) {
	dir := t.TempDir()
	cfgPath := testenv.WriteHubConfig(t, testenv.HubConfig{Dir: dir, Keys: hubKeys(t, dir)})
	reg := makeRegister(2500)
	file := filepath.Join(dir, "register.csv")
	mapping := filepath.Join(dir, "acceptance-register.yaml")
	rejects := filepath.Join(dir, "rejects.csv")
	for p, data := range map[string][]byte{file: reg.csv, mapping: []byte(acceptanceMapping)} {
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	want := fmt.Sprintf("rows read   %10d", reg.read)
	code, out, stderr := hubctl(t, "convert", "--config", cfgPath, "--mapping", mapping, "--dry-run", "--rejects", rejects, file)
	if code != 0 || !strings.Contains(out, want) || !strings.Contains(out, fmt.Sprintf("would convert %10d", len(reg.converted))) {
		t.Fatalf("dry run: exit %d\n%s%s", code, out, stderr)
	}
	raw, err := os.ReadFile(rejects)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(raw), "\n"); n != len(reg.rejects)+1 {
		t.Errorf("rejects file has %d lines, want %d", n, len(reg.rejects)+1)
	}
	if st := objectsUnder(t, filepath.Join(dir, "data")); st != 0 {
		t.Errorf("the dry run left %d files in data_dir", st)
	}

	code, out, stderr = hubctl(t, "convert", "--config", cfgPath, "--mapping", mapping, "--quiet", file)
	if code != 0 || !strings.Contains(out, fmt.Sprintf("converted   %10d", len(reg.converted))) ||
		!strings.Contains(out, fmt.Sprintf("duplicates  %10d", reg.duplicates)) {
		t.Fatalf("real run: exit %d\n%s%s", code, out, stderr)
	}
	if n := objectsUnder(t, filepath.Join(dir, "data")); n < len(reg.converted) {
		t.Errorf("after the real run data_dir has %d files, fewer than the %d licenses", n, len(reg.converted))
	}
	code, out2, stderr := hubctl(t, "convert", "--config", cfgPath, "--mapping", mapping, "--quiet", file)
	if code != 0 || !strings.Contains(out2, fmt.Sprintf("converted   %10d", len(reg.converted))) {
		t.Errorf("second run of the same command: exit %d\n%s%s", code, out2, stderr)
	}
	id := strings.TrimSuffix(strings.Fields(out)[1], ":")
	code, csvOut, stderr := hubctl(t, "convert", "rejects", "--config", cfgPath, id)
	if code != 0 || strings.Count(csvOut, "\n") != len(reg.rejects)+1 {
		t.Errorf("convert rejects: exit %d, %d lines\n%s", code, strings.Count(csvOut, "\n"), stderr)
	}
	code, status, stderr := hubctl(t, "convert", "status", "--config", cfgPath, id)
	if code != 0 || !strings.Contains(status, `"state": "done"`) {
		t.Errorf("convert status: exit %d\n%s%s", code, status, stderr)
	}
}

// objectsUnder counts regular files under dir (none if it is missing).
func objectsUnder(t *testing.T, dir string) int {
	n := 0
	filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			n++
		}
		return nil
	})
	return n
}
