package runner

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/catalog"
	"github.com/licensehub/licensehub/convert"
	"github.com/licensehub/licensehub/ident"
	"github.com/licensehub/licensehub/internal/testenv"
	"github.com/licensehub/licensehub/internal/testenv/testkeys"
	"github.com/licensehub/licensehub/license"
	"github.com/licensehub/licensehub/signing"
	"github.com/licensehub/licensehub/store/fs"
	"github.com/licensehub/licensehub/store/mem"
	miniostore "github.com/licensehub/licensehub/store/minio"
	redisstore "github.com/licensehub/licensehub/store/redis"
)

const (
	testAuthority = "11430000006122244L"
	testType      = "11100000000013338W011"
	testMapping   = "test-register"
)

// backends are the store pairs every integration test runs on.
var backends = []struct {
	name string
	open func(t testing.TB) *stores
}{
	{"fs+mem", openEmbedded},
	{"minio+redis", openServers},
}

// stores is one backend pair; redis and minio are set for the servers.
type stores struct {
	objects licensehub.ObjectStore
	kv      licensehub.KV
	redis   *redisstore.Store
	prefix  string // Redis key prefix
	minio   *miniostore.Store
	mio     testenv.MinIO
	bucket  string
}

func openEmbedded(t testing.TB) *stores {
	t.Helper()
	objects, err := fs.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { objects.Close() })
	kv := mem.New()
	t.Cleanup(func() { kv.Close() })
	return &stores{objects: objects, kv: kv}
}

func openServers(t testing.TB) *stores {
	t.Helper()
	mio := testenv.RequireMinIO(t)
	url := testenv.RequireRedis(t)
	s := &stores{mio: mio, bucket: mio.Bucket(t), prefix: testenv.Name(t) + ":"}
	s.minio = openMinIOAt(t, mio, mio.Endpoint, s.bucket, 0)
	s.objects = s.minio
	kv, err := redisstore.Open(t.Context(), redisstore.Config{URL: url, Prefix: s.prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if keys, err := redisKeys(ctx, kv.Client(), s.prefix); err == nil && len(keys) > 0 {
			kv.Client().Unlink(ctx, keys...)
		}
		kv.Close()
	})
	s.redis, s.kv = kv, kv
	return s
}

func openMinIOAt(t testing.TB, mio testenv.MinIO, endpoint, bucket string, timeout time.Duration) *miniostore.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := miniostore.Open(ctx, miniostore.Config{Endpoint: endpoint, AccessKey: mio.AccessKey,
		SecretKey: mio.SecretKey, Bucket: bucket, OpTimeout: timeout})
	if err != nil {
		t.Fatalf("minio.Open(%s): %v", bucket, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func redisKeys(ctx context.Context, c *goredis.Client, prefix string) ([]string, error) {
	iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	sort.Strings(keys)
	return keys, iter.Err()
}

// hubEnv is a license library on a backend, with the test mapping.
type hubEnv struct {
	*stores
	lib     *license.Library
	cat     *catalog.Catalog
	mapping *convert.Mapping
}

// testKeyring is a keyring with an active key of testAuthority.
func testKeyring(t testing.TB) *signing.Keyring {
	t.Helper()
	now := time.Now()
	return testkeys.KeyringIn(t, filepath.Join(t.TempDir(), "keys"), now.Add(-time.Hour), now.AddDate(1, 0, 0), testAuthority)
}

func newHubEnv(t testing.TB, s *stores) *hubEnv {
	t.Helper()
	cat, err := catalog.Load(filepath.Join("..", "..", "configs", "catalog"))
	if err != nil {
		t.Fatal(err)
	}
	lib, err := license.NewLibrary(license.Config{Objects: s.objects, KV: s.kv, Signers: testKeyring(t),
		Catalog: license.CatalogFunc(cat.Validator), DefaultValidUntil: cat.DefaultValidUntil, TypeName: cat.TypeName,
		OpTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return &hubEnv{stores: s, lib: lib, cat: cat, mapping: testMappingFor(t, cat)}
}

// testMappingFor is a business-license register in UTF-8 CSV.
func testMappingFor(t testing.TB, cat *catalog.Catalog) *convert.Mapping {
	t.Helper()
	m := &convert.Mapping{
		Name: testMapping, LicenseType: testType, Format: convert.FormatCSV, Encoding: convert.EncodingUTF8,
		Authority: license.Party{Name: "湖南省市场监督管理局（演示）", Code: testAuthority},
		AreaCode:  "430100",
		Columns: map[string]string{
			"number": "注册号", "holder.name": "企业名称", "holder.code": "统一社会信用代码", "issue_date": "发证日期",
			"fields.name": "企业名称", "fields.unified_social_credit_code": "统一社会信用代码", "fields.entity_type": "企业类型",
			"fields.legal_representative": "法定代表人", "fields.established_date": "成立日期",
			"fields.business_term_to": "营业期限至", "fields.address": "住所", "fields.business_scope": "经营范围",
			"fields.registration_authority": "登记机关",
		},
		DateFormats: []string{"2006-01-02", "2006年1月2日"},
	}
	if err := m.BindCatalog(cat); err != nil {
		t.Fatalf("mapping: %v", err)
	}
	return m
}

// runner makes a Runner on the env; edit adjusts its Config.
func (e *hubEnv) runner(t testing.TB, owner string, edit ...func(*Config)) *Runner {
	t.Helper()
	cfg := Config{Library: e.lib, Objects: e.objects, KV: e.kv, Mappings: map[string]*convert.Mapping{testMapping: e.mapping},
		Workers: 8, CheckpointRows: 50, CheckpointEvery: 200 * time.Millisecond, LeaseTTL: 3 * time.Second,
		Owner: owner, OpTimeout: 5 * time.Second, Logger: testLogger(t)}
	for _, f := range edit {
		f(&cfg)
	}
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// testLogger logs to the test's output (shown on failure and with -v).
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// row kinds of the generated registers.
const (
	rowClean = iota
	rowDuplicate
	rowBadCode
	rowBadDate
	rowInvalid   // passes the mapping, refused by the library (catalog max_length)
	rowMalformed // wrong number of fields
	rowLibDup    // its number is already in the library
)

// dataset is a generated legacy register and what converting it must
// give.
type dataset struct {
	csv     []byte
	rows    int
	counts  Counts
	rejects []convert.Reject // line order: line, field and code
	// byNumber: the line whose row makes the license of each converted
	// number.
	byNumber map[string]int
	// libNumbers must be pushed to the library before the run (other
	// content), so that their rows are duplicates.
	libNumbers []string
}

// numberOf is the license number of row i under prefix.
func numberOf(prefix string, i int) string { return fmt.Sprintf("%s%09d", prefix, i) }

// creditCode is a valid unified social credit code for i.
func creditCode(i int) string {
	first := fmt.Sprintf("91430100%09d", i%1_000_000_000)
	c, err := ident.CreditCodeCheck(first)
	if err != nil {
		panic(err)
	}
	return first + string(c)
}

// kindOf says what row i (1-based; line i+1) of a generated register is.
// A large register is mostly clean rows.
func kindOf(i int) int {
	switch {
	case i%997 == 500:
		return rowMalformed
	case i%53 == 0:
		return rowBadCode
	case i%71 == 0:
		return rowBadDate
	case i%89 == 0:
		return rowInvalid
	case i%97 == 0 && i > 50:
		return rowDuplicate
	case i%101 == 7:
		return rowLibDup
	}
	return rowClean
}

var header = []string{"注册号", "企业名称", "统一社会信用代码", "发证日期", "企业类型", "法定代表人", "成立日期",
	"营业期限至", "住所", "经营范围", "登记机关"}

// generate makes a register of n rows whose numbers start with prefix.
func generate(n int, prefix string) *dataset {
	d := &dataset{rows: n, byNumber: map[string]int{}, counts: Counts{RejectedBy: map[string]int{}}}
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.Write(header)
	claimed := map[string]bool{}
	reject := func(line int, field, code string) {
		d.counts.Rejected++
		d.counts.RejectedBy[code]++
		d.rejects = append(d.rejects, convert.Reject{Line: line, Field: field, Code: code})
	}
	for i := 1; i <= n; i++ {
		line := i + 1
		kind := kindOf(i)
		number := numberOf(prefix, i)
		if kind == rowDuplicate {
			number = numberOf(prefix, i-50)
		}
		code := creditCode(i)
		issued := fmt.Sprintf("%d-%02d-%02d", 2010+i%10, 1+i%12, 1+i%28)
		address := fmt.Sprintf("长沙市岳麓区示范路%d号", i)
		d.counts.Read++
		switch kind {
		case rowMalformed:
			w.Write([]string{number, "缺列企业"})
			reject(line, "", convert.RejectMalformedRow)
			continue
		case rowBadCode:
			code = code[:17] + string("0123456789ABCDEFGHJKLMNPQRTUWXY"[(strings.IndexByte("0123456789ABCDEFGHJKLMNPQRTUWXY", code[17])+1)%31])
			reject(line, "holder.code", convert.RejectBadHolderCode)
		case rowBadDate:
			issued = "2015-02-30"
			reject(line, "issue_date", convert.RejectBadDate)
		case rowInvalid:
			address = strings.Repeat("长", 201)
			reject(line, "fields.address", convert.RejectInvalid)
		case rowLibDup:
			d.libNumbers = append(d.libNumbers, number)
			claimed[number] = true
		}
		w.Write([]string{number, fmt.Sprintf("测试企业%d有限公司", i), code, issued, "有限责任公司", "张三", issued,
			"长期", address, "软件开发", "长沙市市场监督管理局"})
		switch {
		case kind == rowBadCode || kind == rowBadDate || kind == rowInvalid:
		case claimed[number]:
			d.counts.Duplicates++
		default:
			claimed[number] = true
			d.counts.Converted++
			d.byNumber[number] = line
		}
	}
	w.Flush()
	d.csv = b.Bytes()
	return d
}

// preload pushes the dataset's library duplicates (other content: no
// provenance, another holder).
func (e *hubEnv) preload(t testing.TB, d *dataset) {
	t.Helper()
	for i, number := range d.libNumbers {
		code := creditCode(900_000_000 + i)
		_, err := e.lib.Push(t.Context(), license.PushRequest{App: "test", TypeCode: testType,
			Issuer: license.Party{Name: "湖南省市场监督管理局（演示）", Code: testAuthority}, Number: number,
			Holder:    license.Holder{Name: "已有企业有限公司", Code: code, CodeType: ident.HolderCreditCode},
			IssueDate: "2020-01-02", ValidFrom: "2020-01-02", AreaCode: "430100",
			Fields: map[string]any{"unified_social_credit_code": code, "name": "已有企业有限公司", "entity_type": "有限责任公司",
				"legal_representative": "李四", "established_date": "2020-01-02", "business_term_to": "long-term",
				"address": "长沙市", "business_scope": "软件开发", "registration_authority": "长沙市市场监督管理局"}})
		if err != nil {
			t.Fatalf("preload %s: %v", number, err)
		}
	}
}

// csvOpener opens data as the test mapping's reader, every time afresh.
func csvOpener(t testing.TB, data []byte) func() (convert.Reader, error) {
	return func() (convert.Reader, error) {
		return convert.OpenReader(bytes.NewReader(data), int64(len(data)), convert.FormatCSV, convert.EncodingUTF8, "", 0)
	}
}

// localJob is a job for data as the CLI would make it (not stored).
func localJob(id string, data []byte) Job {
	return Job{ID: id, Mapping: testMapping, Source: "register.csv", Format: convert.FormatCSV,
		Size: int64(len(data)), CreatedAt: time.Now().UTC(), CreatedBy: "test"}
}

var jobSeq atomic.Int64

// newJobID is a fresh job ID.
func newJobID() string {
	return fmt.Sprintf("%016x%016x", time.Now().UnixNano(), jobSeq.Add(1))
}

// converted lists the licenses in the store made by a stock conversion:
// number → (batch, source line) for every license object.
type madeBy struct {
	batch string
	line  int
}

func (e *hubEnv) licenses(t testing.TB) (all int, byNumber map[string]madeBy) {
	t.Helper()
	byNumber = map[string]madeBy{}
	ctx := context.Background()
	var keys []string
	if err := e.objects.List(ctx, "licenses/", func(oi licensehub.ObjectInfo) error {
		keys = append(keys, oi.Key)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, key := range keys {
		rc, _, err := e.objects.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		doc, err := signing.ParseDocument(raw)
		if err != nil {
			t.Fatal(err)
		}
		var lic license.License
		if err := json.Unmarshal(doc.Body, &lic); err != nil {
			t.Fatal(err)
		}
		if _, dup := byNumber[lic.Number]; dup {
			t.Errorf("license number %s stored twice", lic.Number)
		}
		if p := lic.Provenance; p != nil {
			byNumber[lic.Number] = madeBy{batch: p.Batch, line: p.SourceLine}
		} else {
			byNumber[lic.Number] = madeBy{}
		}
	}
	return len(keys), byNumber
}

// checkLicenses: exactly one license per converted number, made by job
// at the expected line; the library duplicates untouched.
func (e *hubEnv) checkLicenses(t testing.TB, d *dataset, job string) {
	t.Helper()
	all, got := e.licenses(t)
	if want := len(d.byNumber) + len(d.libNumbers); all != want {
		t.Errorf("%d license objects, want %d (%d converted + %d already there)", all, want, len(d.byNumber), len(d.libNumbers))
	}
	for number, line := range d.byNumber {
		if g := got[number]; g.batch != job || g.line != line {
			t.Errorf("license %s made by %+v, want job %s line %d", number, g, job, line)
		}
	}
	for _, number := range d.libNumbers {
		if g := got[number]; g.batch != "" {
			t.Errorf("library license %s replaced by %+v", number, g)
		}
	}
}

// checkCounts compares counts, ignoring a nil/empty RejectedBy difference.
func checkCounts(t testing.TB, what string, got, want Counts) {
	t.Helper()
	if got.Summary() != want.Summary() {
		t.Errorf("%s counts:\n got %s\nwant %s", what, got.Summary(), want.Summary())
	}
	if got.Read != got.Converted+got.Duplicates+got.Rejected {
		t.Errorf("%s counts do not add up: %s", what, got.Summary())
	}
}

// parseRejects reads a rejects CSV (header first).
func parseRejects(t testing.TB, raw []byte) []convert.Reject {
	t.Helper()
	recs, err := csv.NewReader(bytes.NewReader(raw)).ReadAll()
	if err != nil {
		t.Fatalf("rejects CSV: %v\n%s", err, raw)
	}
	if len(recs) == 0 || strings.Join(recs[0], ",") != "line,field,code,message,number" {
		t.Fatalf("rejects CSV header: %q", recs)
	}
	var out []convert.Reject
	for _, r := range recs[1:] {
		var line int
		fmt.Sscan(r[0], &line)
		if r[3] == "" {
			t.Errorf("reject at line %d has no message", line)
		}
		out = append(out, convert.Reject{Line: line, Field: r[1], Code: r[2]})
	}
	return out
}

// checkRejects compares line, field and code.
func checkRejects(t testing.TB, got, want []convert.Reject) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%d rejects, want %d", len(got), len(want))
	}
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			t.Errorf("reject %d: got %+v, want %+v", i, got[i], want[i])
			return
		}
	}
}

// hookedLibrary counts pushes and calls its hooks at each.
type hookedLibrary struct {
	Library
	pushes atomic.Int64
	before func(n int64) // called before push n (1-based)
	// hold, when it reports true for push n, makes the push wait for its
	// context to end (the run stopping) instead of going on.
	hold func(n int64) bool
}

func (h *hookedLibrary) Push(ctx context.Context, req license.PushRequest) (*license.PushResult, error) {
	n := h.pushes.Add(1)
	if h.before != nil {
		h.before(n)
	}
	if h.hold != nil && h.hold(n) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return h.Library.Push(ctx, req)
}

// flakyObjects fails every call (on keys containing only, if set) with
// EOBJECTSTORE while down is set, and the first Get of a key ending in
// failOnce (if set): a fault at a point in the work, not after a duration.
type flakyObjects struct {
	licensehub.ObjectStore
	down     atomic.Bool
	only     string
	failOnce string
	tripped  atomic.Bool
}

func (f *flakyObjects) err(key string) error {
	if f.down.Load() && strings.Contains(key, f.only) {
		return licensehub.Errorf(licensehub.EOBJECTSTORE, "test: object store down (%s)", key)
	}
	return nil
}

func (f *flakyObjects) Create(ctx context.Context, key string, r io.Reader, size int64, o licensehub.PutOptions) (licensehub.ObjectInfo, error) {
	if err := f.err(key); err != nil {
		return licensehub.ObjectInfo{}, err
	}
	return f.ObjectStore.Create(ctx, key, r, size, o)
}

func (f *flakyObjects) Put(ctx context.Context, key string, r io.Reader, size int64, o licensehub.PutOptions) (licensehub.ObjectInfo, error) {
	if err := f.err(key); err != nil {
		return licensehub.ObjectInfo{}, err
	}
	return f.ObjectStore.Put(ctx, key, r, size, o)
}

func (f *flakyObjects) Get(ctx context.Context, key string) (io.ReadCloser, licensehub.ObjectInfo, error) {
	if err := f.err(key); err != nil {
		return nil, licensehub.ObjectInfo{}, err
	}
	if f.failOnce != "" && strings.HasSuffix(key, f.failOnce) && f.tripped.CompareAndSwap(false, true) {
		return nil, licensehub.ObjectInfo{}, licensehub.Errorf(licensehub.EOBJECTSTORE, "test: object store failed once (%s)", key)
	}
	return f.ObjectStore.Get(ctx, key)
}

func (f *flakyObjects) Head(ctx context.Context, key string) (licensehub.ObjectInfo, error) {
	if err := f.err(key); err != nil {
		return licensehub.ObjectInfo{}, err
	}
	return f.ObjectStore.Head(ctx, key)
}

// flakyKV fails every call with EUNAVAILABLE while down is set.
type flakyKV struct {
	licensehub.KV
	down atomic.Bool
}

func (f *flakyKV) err() error {
	if f.down.Load() {
		return licensehub.Errorf(licensehub.EUNAVAILABLE, "test: KV down")
	}
	return nil
}

func (f *flakyKV) Get(ctx context.Context, key string) ([]byte, error) {
	if err := f.err(); err != nil {
		return nil, err
	}
	return f.KV.Get(ctx, key)
}
func (f *flakyKV) Set(ctx context.Context, key string, v []byte, ttl time.Duration) error {
	if err := f.err(); err != nil {
		return err
	}
	return f.KV.Set(ctx, key, v, ttl)
}
func (f *flakyKV) SetNX(ctx context.Context, key string, v []byte, ttl time.Duration) (bool, error) {
	if err := f.err(); err != nil {
		return false, err
	}
	return f.KV.SetNX(ctx, key, v, ttl)
}
func (f *flakyKV) CompareAndDelete(ctx context.Context, key string, v []byte) (bool, error) {
	if err := f.err(); err != nil {
		return false, err
	}
	return f.KV.CompareAndDelete(ctx, key, v)
}
func (f *flakyKV) CompareAndExpire(ctx context.Context, key string, v []byte, ttl time.Duration) (bool, error) {
	if err := f.err(); err != nil {
		return false, err
	}
	return f.KV.CompareAndExpire(ctx, key, v, ttl)
}
func (f *flakyKV) Incr(ctx context.Context, key string, d int64, ttl time.Duration) (int64, error) {
	if err := f.err(); err != nil {
		return 0, err
	}
	return f.KV.Incr(ctx, key, d, ttl)
}
func (f *flakyKV) Delete(ctx context.Context, keys ...string) error {
	if err := f.err(); err != nil {
		return err
	}
	return f.KV.Delete(ctx, keys...)
}
func (f *flakyKV) SAdd(ctx context.Context, key string, m ...string) error {
	if err := f.err(); err != nil {
		return err
	}
	return f.KV.SAdd(ctx, key, m...)
}
func (f *flakyKV) SRem(ctx context.Context, key string, m ...string) error {
	if err := f.err(); err != nil {
		return err
	}
	return f.KV.SRem(ctx, key, m...)
}
func (f *flakyKV) ZAdd(ctx context.Context, key string, score float64, m string) error {
	if err := f.err(); err != nil {
		return err
	}
	return f.KV.ZAdd(ctx, key, score, m)
}
func (f *flakyKV) XAdd(ctx context.Context, key string, fields map[string]string) (string, error) {
	if err := f.err(); err != nil {
		return "", err
	}
	return f.KV.XAdd(ctx, key, fields)
}

// readOnlyKV fails the test on any write (dry runs).
type readOnlyKV struct {
	licensehub.KV
	t      testing.TB
	writes atomic.Int64
}

func (k *readOnlyKV) write(op, key string) error {
	k.writes.Add(1)
	k.t.Errorf("KV %s %s during a dry run", op, key)
	return licensehub.Errorf(licensehub.EINTERNAL, "read-only KV")
}

func (k *readOnlyKV) Set(ctx context.Context, key string, v []byte, ttl time.Duration) error {
	return k.write("SET", key)
}
func (k *readOnlyKV) SetNX(ctx context.Context, key string, v []byte, ttl time.Duration) (bool, error) {
	return false, k.write("SETNX", key)
}
func (k *readOnlyKV) CompareAndDelete(ctx context.Context, key string, v []byte) (bool, error) {
	return false, k.write("CAD", key)
}
func (k *readOnlyKV) CompareAndExpire(ctx context.Context, key string, v []byte, ttl time.Duration) (bool, error) {
	return false, k.write("CAE", key)
}
func (k *readOnlyKV) Delete(ctx context.Context, keys ...string) error {
	return k.write("DEL", strings.Join(keys, " "))
}
func (k *readOnlyKV) Incr(ctx context.Context, key string, d int64, ttl time.Duration) (int64, error) {
	return 0, k.write("INCR", key)
}
func (k *readOnlyKV) SAdd(ctx context.Context, key string, m ...string) error {
	return k.write("SADD", key)
}
func (k *readOnlyKV) SRem(ctx context.Context, key string, m ...string) error {
	return k.write("SREM", key)
}
func (k *readOnlyKV) ZAdd(ctx context.Context, key string, s float64, m string) error {
	return k.write("ZADD", key)
}
func (k *readOnlyKV) ZRem(ctx context.Context, key string, m ...string) error {
	return k.write("ZREM", key)
}
func (k *readOnlyKV) XAdd(ctx context.Context, key string, f map[string]string) (string, error) {
	return "", k.write("XADD", key)
}
func (k *readOnlyKV) XTrimMinID(ctx context.Context, key, id string) (int64, error) {
	return 0, k.write("XTRIM", key)
}

// objectListing is every key of the store with its ETag.
func objectListing(t testing.TB, s licensehub.ObjectStore) map[string]string {
	t.Helper()
	out := map[string]string{}
	if err := s.List(context.Background(), "", func(oi licensehub.ObjectInfo) error {
		out[oi.Key] = oi.ETag
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
