// Package config loads the hub's configuration: one YAML file
// (configs/hub.yaml documents every key and its default) with HUB_*
// environment overrides, validated before anything starts. Every problem is
// reported with the key it concerns.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/licensehub/licensehub"
)

// Config is the whole configuration. The yaml tags are the key names; the
// environment variable for a key is HUB_ + the key path upper-cased with
// '.' replaced by '_' (server.body_limit -> HUB_SERVER_BODY_LIMIT).
type Config struct {
	Server Server `yaml:"server"`
	Log    Log    `yaml:"log"`
	// DataDir holds the embedded filesystem object store when no MinIO is
	// configured.
	DataDir    string     `yaml:"data_dir"`
	MinIO      MinIO      `yaml:"minio"`
	Redis      Redis      `yaml:"redis"`
	Signing    Signing    `yaml:"signing"`
	Auth       Auth       `yaml:"auth"`
	Audit      Audit      `yaml:"audit"`
	Catalog    Catalog    `yaml:"catalog"`
	Library    Library    `yaml:"library"`
	Adapters   Adapters   `yaml:"adapters"`
	Lookup     Lookup     `yaml:"lookup"`
	Conversion Conversion `yaml:"conversion"`
	Exchange   Exchange   `yaml:"exchange"`
	Demo       Demo       `yaml:"demo"`

	// Authorities is the registry of issuing authorities.
	Authorities Authorities `yaml:"authorities"`
}

// Exchange configures the exchange with the provincial platform (全省通办):
// outbound delivery of every license event, the pull feed, reconciliation
// and the inbound endpoint.
type Exchange struct {
	// Enabled starts outbound delivery (one delivering instance at a time).
	// The feed and reconcile routes are served either way.
	Enabled bool `yaml:"enabled"`
	// ProvinceURL is the provincial platform's base URL: events are POSTed
	// to ProvinceURL + "/v1/events"; reconciliation reads
	// ProvinceURL + "/v1/reconcile".
	ProvinceURL string `yaml:"province_url"`
	// ProvinceKeys is the path of the province's signing.Bundle JSON
	// (verifies inbound envelopes).
	ProvinceKeys string `yaml:"province_keys"`
	// Concurrency is the number of delivery lanes (licenses delivered in
	// parallel; one license's events stay in order).
	Concurrency int `yaml:"concurrency"`
	// MaxAttempts per event before it is dead-lettered.
	MaxAttempts int `yaml:"max_attempts"`
	// MaxRetryAfter caps how long a province's Retry-After is honoured.
	MaxRetryAfter Duration `yaml:"max_retry_after"`
	// Timeout bounds one HTTP attempt to the province.
	Timeout Duration `yaml:"timeout"`
	// LeaseTTL is the delivery lease: a crashed leader is replaced after it.
	LeaseTTL Duration `yaml:"lease_ttl"`
	// FeedSettle: the pull feed serves only outbox objects older than this,
	// so a cursor never skips an object written late.
	FeedSettle Duration `yaml:"feed_settle"`
	// CheckpointEvents bounds what a Redis loss re-delivers: at most this
	// many events are in flight beyond the last durable delivery
	// checkpoint in the object store.
	CheckpointEvents int `yaml:"checkpoint_events"`
}

// Conversion configures stock-license conversion (存量证照): legacy
// registers turned into signed licenses in bulk by background jobs.
type Conversion struct {
	// MappingsDir holds one YAML mapping per legacy source.
	MappingsDir string `yaml:"mappings_dir"`
	// Workers push one job's rows to the library concurrently.
	Workers int `yaml:"workers"`
	// CheckpointRows and CheckpointEvery: a job checkpoints its progress to
	// the object store after this many rows or this long, whichever first.
	CheckpointRows  int      `yaml:"checkpoint_rows"`
	CheckpointEvery Duration `yaml:"checkpoint_every"`
	// LeaseTTL is how long a job's lease (one runner per job across hub
	// instances) lasts unless renewed; a crashed instance's jobs are taken
	// over after it.
	LeaseTTL Duration `yaml:"lease_ttl"`
	// Poll is how often an instance looks for queued jobs.
	Poll Duration `yaml:"poll"`
	// MaxUpload bounds an uploaded source file (POST /v1/conversions).
	MaxUpload ByteSize `yaml:"max_upload"`
	// XLSXMaxUnzipped bounds what an XLSX workbook (a zip) may unpack to,
	// in all: a larger one (a zip bomb) is refused before it is unpacked.
	XLSXMaxUnzipped ByteSize `yaml:"xlsx_max_unzipped"`
}

// Lookup configures the once-only lookups.
type Lookup struct {
	// MattersFile lists the service matters and the materials each needs.
	MattersFile string `yaml:"matters_file"`
	// AccessCodeTTL is how long an access code reads its annotated copy.
	AccessCodeTTL Duration `yaml:"access_code_ttl"`
	// UseTTL is how long an annotated copy (加注件) is valid for its matter.
	UseTTL Duration `yaml:"use_ttl"`
}

// Adapters configures the public-security, social-security and tax
// upstreams and the certificates derived from their answers.
type Adapters struct {
	// CertificateValidity is how long a derived certificate is valid.
	CertificateValidity Duration `yaml:"certificate_validity"`
	PublicSecurity      Upstream `yaml:"publicsecurity"`
	SocialSecurity      Upstream `yaml:"socialsecurity"`
	Tax                 Upstream `yaml:"tax"`
}

// Upstream is one upstream system, reached in the national gateway's style
// (app key + HMAC over request ID, time and service ID).
type Upstream struct {
	// BaseURL is empty when the upstream is not connected (in demo mode the
	// hub then starts its simulator).
	BaseURL       string   `yaml:"base_url"`
	AppKey        string   `yaml:"app_key"`
	Secret        Secret   `yaml:"secret"`
	Algorithm     string   `yaml:"algorithm"`
	Timeout       Duration `yaml:"timeout"`
	MaxAttempts   int      `yaml:"max_attempts"`
	MaxRetryAfter Duration `yaml:"max_retry_after"`
	Concurrency   int      `yaml:"concurrency"`
	BreakerFails  int      `yaml:"breaker_failures"`
	BreakerOpen   Duration `yaml:"breaker_open_for"`
	// Mapping overrides the default field mapping per kind of certificate:
	// kind -> certificate field -> dotted path in the upstream's answer.
	Mapping map[string]map[string]string `yaml:"mapping"`
}

// Catalog locates the license catalog (one YAML file per license type).
type Catalog struct {
	Dir string `yaml:"dir"`
}

// Authorities locates the registry of issuing authorities (颁发机构):
// credit code, name, area code and level of each; a push's issuer must be
// in it.
type Authorities struct {
	File string `yaml:"file"`
}

// Library configures the license library's background work.
type Library struct {
	// SweepInterval is how often licenses past their validity are marked
	// expired (one instance at a time).
	SweepInterval Duration `yaml:"sweep_interval"`
	// IssueDateSkewDays is how many days after today (China Standard
	// Time) a pushed license's issue date may be (0..7).
	IssueDateSkewDays int `yaml:"issue_date_skew_days"`
}

// Auth configures member-system authentication.
type Auth struct {
	// MembersFile is the registry of member systems (app IDs, roles, grants,
	// secrets, rate limits).
	MembersFile string `yaml:"members_file"`
	// MaxSkew is the clock difference tolerated on request timestamps;
	// nonces are remembered for twice as long.
	MaxSkew Duration `yaml:"max_skew"`
	// MaxAhead is how far ahead of the hub's clock a timestamp may be
	// (0..max_skew); after the nonce store lost its data (Redis restarted
	// empty, the embedded hub restarted) requests signed within it of the
	// loss are refused, so no captured request is accepted twice.
	MaxAhead Duration `yaml:"max_ahead"`
}

// Audit configures the tamper-evident audit trail.
type Audit struct {
	// HolderKey keys the hash under which holder codes are stored, so the
	// trail can be searched by holder without holding the code itself.
	HolderKey Secret `yaml:"holder_key"`
	// JournalDir holds this instance's local audit journal (and its
	// instance ID): with Redis as well as without, every record is
	// fsynced there before the response leaves. One directory per
	// instance, on a disk that survives restarts.
	JournalDir string `yaml:"journal_dir"`
	// SealInterval is how often pending records are sealed into segments.
	SealInterval Duration `yaml:"seal_interval"`
	// SegmentRecords caps the records per sealed segment.
	SegmentRecords int `yaml:"segment_records"`
}

type Server struct {
	Addr            string   `yaml:"addr"`
	BodyLimit       ByteSize `yaml:"body_limit"`
	ReadTimeout     Duration `yaml:"read_timeout"`
	WriteTimeout    Duration `yaml:"write_timeout"`
	IdleTimeout     Duration `yaml:"idle_timeout"`
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
	ReadyTimeout    Duration `yaml:"ready_timeout"`
}

type Log struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

type MinIO struct {
	Endpoint  string   `yaml:"endpoint"`
	AccessKey string   `yaml:"access_key"`
	SecretKey Secret   `yaml:"secret_key"`
	Bucket    string   `yaml:"bucket"`
	Region    string   `yaml:"region"`
	Timeout   Duration `yaml:"timeout"`
}

type Redis struct {
	URL      string   `yaml:"url"`
	Password Secret   `yaml:"password"`
	Prefix   string   `yaml:"prefix"`
	Timeout  Duration `yaml:"timeout"`
}

// Signing locates the issuing authorities' keys.
type Signing struct {
	// KeysDir holds keyring.yaml and the PKCS#8 key files (hubctl keys gen).
	KeysDir string `yaml:"keys_dir"`
	// KeyPassword decrypts password-protected key files.
	KeyPassword Secret `yaml:"key_password"`
	// TrustRoots, when set, is a PEM file of SM2 root certificates: every key
	// must then carry a certificate that chains to one of them.
	TrustRoots string `yaml:"trust_roots"`
	// HubAuthority is the unified social credit code of the hub's operator;
	// its key signs audit checkpoints and derived certificates.
	HubAuthority string `yaml:"hub_authority"`
}

type Demo struct {
	Enabled bool `yaml:"enabled"`
}

// Default returns the configuration used when a key is not set anywhere.
// configs/hub.yaml repeats these values; a test keeps the two equal.
func Default() Config {
	return Config{
		Server: Server{
			Addr:            "127.0.0.1:8080",
			BodyLimit:       1 << 20,
			ReadTimeout:     Duration(30 * time.Second),
			WriteTimeout:    Duration(30 * time.Second),
			IdleTimeout:     Duration(120 * time.Second),
			ShutdownTimeout: Duration(15 * time.Second),
			ReadyTimeout:    Duration(2 * time.Second),
		},
		Log:     Log{Level: "info", Format: "json"},
		DataDir: "./data",
		MinIO:   MinIO{Bucket: "licensehub", Timeout: Duration(10 * time.Second)},
		Redis:   Redis{Prefix: "lh:", Timeout: Duration(2 * time.Second)},
		Signing: Signing{KeysDir: "./data/keys", HubAuthority: "11330100MB1234567E"},
		Auth:    Auth{MembersFile: "configs/members.yaml", MaxSkew: Duration(5 * time.Minute), MaxAhead: Duration(2 * time.Second)},
		Audit:   Audit{JournalDir: "./data/audit", SealInterval: Duration(10 * time.Second), SegmentRecords: 10000},
		Catalog: Catalog{Dir: "configs/catalog"},
		Library: Library{SweepInterval: Duration(time.Hour), IssueDateSkewDays: 1},
		Lookup:  Lookup{MattersFile: "configs/matters.yaml", AccessCodeTTL: Duration(10 * time.Minute), UseTTL: Duration(24 * time.Hour)},
		Conversion: Conversion{MappingsDir: "configs/conversion", Workers: 16, CheckpointRows: 1000,
			CheckpointEvery: Duration(2 * time.Second), LeaseTTL: Duration(30 * time.Second), Poll: Duration(2 * time.Second),
			MaxUpload: 2 << 30, XLSXMaxUnzipped: 1 << 30},
		Adapters: Adapters{CertificateValidity: Duration(72 * time.Hour),
			PublicSecurity: defaultUpstream(), SocialSecurity: defaultUpstream(), Tax: defaultUpstream()},
		Exchange: Exchange{Concurrency: 16, MaxAttempts: 8, CheckpointEvents: 1000,
			MaxRetryAfter: Duration(60 * time.Second), Timeout: Duration(10 * time.Second),
			LeaseTTL: Duration(30 * time.Second), FeedSettle: Duration(15 * time.Second)},
		Demo: Demo{Enabled: true},

		Authorities: Authorities{File: "configs/authorities.yaml"},
	}
}

func defaultUpstream() Upstream {
	return Upstream{Algorithm: "sm3", Timeout: Duration(3 * time.Second), MaxAttempts: 3,
		MaxRetryAfter: Duration(5 * time.Second), Concurrency: 16, BreakerFails: 5, BreakerOpen: Duration(30 * time.Second),
		Mapping: map[string]map[string]string{}}
}

// Embedded reports whether the hub runs on its embedded backends.
func (c *Config) EmbeddedObjects() bool { return c.MinIO.Endpoint == "" }
func (c *Config) EmbeddedKV() bool      { return c.Redis.URL == "" }

// Problem is one thing wrong with the configuration.
type Problem struct {
	Key     string // dotted key path, e.g. server.body_limit
	Source  string // "configs/hub.yaml:12", "env HUB_X" or "" for the merged value
	Message string
}

func (p Problem) String() string {
	if p.Source != "" {
		return fmt.Sprintf("%s (%s): %s", p.Key, p.Source, p.Message)
	}
	return fmt.Sprintf("%s: %s", p.Key, p.Message)
}

// Error lists every problem found, so an operator fixes them in one pass.
type Error struct{ Problems []Problem }

func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = "  " + p.String()
	}
	return "invalid configuration:\n" + strings.Join(lines, "\n")
}

// EnvConfigPath names the variable that points at the YAML file.
const EnvConfigPath = "HUB_CONFIG"

// DefaultPath is the configuration file read when neither a flag nor
// HUB_CONFIG names one and it exists.
const DefaultPath = "configs/hub.yaml"

// ResolvePath picks the configuration file the hub and hubctl read: the
// flag's value, else HUB_CONFIG from environ, else DefaultPath when it
// exists, else "" (built-in defaults).
func ResolvePath(flagValue string, environ []string) string {
	if flagValue != "" {
		return flagValue
	}
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, EnvConfigPath+"="); ok {
			return v
		}
	}
	if _, err := os.Stat(DefaultPath); err == nil {
		return DefaultPath
	}
	return ""
}

// Load reads the YAML file at path ("" for defaults only), applies the HUB_*
// variables from environ (as os.Environ returns them) and validates.
func Load(path string, environ []string) (*Config, error) {
	cfg := Default()
	var problems []Problem
	if path != "" {
		raw, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("config file: %w", err)
		}
		problems = append(problems, decodeYAML(path, raw, &cfg)...)
	}
	problems = append(problems, applyEnv(environ, &cfg)...)
	if len(problems) == 0 {
		problems = cfg.Validate()
	}
	if len(problems) > 0 {
		return nil, &Error{Problems: problems}
	}
	return &cfg, nil
}

// decodeYAML decodes raw onto cfg key by key, so that an unknown key or a bad
// value is reported with its full path and line.
func decodeYAML(path string, raw []byte, cfg *Config) []Problem {
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return []Problem{{Key: "(file)", Source: path, Message: err.Error()}}
	}
	if len(doc.Content) == 0 { // empty file
		return nil
	}
	var problems []Problem
	walkNode(path, "", doc.Content[0], reflect.ValueOf(cfg).Elem(), &problems)
	return problems
}

func walkNode(path, prefix string, n *yaml.Node, v reflect.Value, problems *[]Problem) {
	at := func(n *yaml.Node) string { return fmt.Sprintf("%s:%d", path, n.Line) }
	if v.Kind() == reflect.Struct && !isLeaf(v.Type()) {
		if n.Kind != yaml.MappingNode {
			*problems = append(*problems, Problem{Key: orRoot(prefix), Source: at(n), Message: "must be a mapping of keys"})
			return
		}
		fields := structFields(v.Type())
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			key := join(prefix, k.Value)
			idx, ok := fields[k.Value]
			if !ok {
				*problems = append(*problems, Problem{Key: key, Source: at(k), Message: "unknown key" + suggest(k.Value, fields)})
				continue
			}
			if seen[k.Value] {
				*problems = append(*problems, Problem{Key: key, Source: at(k), Message: "key given twice"})
				continue
			}
			seen[k.Value] = true
			walkNode(path, key, val, v.Field(idx), problems)
		}
		return
	}
	if err := n.Decode(v.Addr().Interface()); err != nil {
		*problems = append(*problems, Problem{Key: prefix, Source: at(n), Message: cleanYAMLError(err)})
	}
}

// Keys lists every leaf key path with its environment variable, in
// declaration order.
func Keys() []struct{ Key, Env string } {
	var out []struct{ Key, Env string }
	forEachLeaf(reflect.ValueOf(&Config{}).Elem(), "", func(key string, _ reflect.Value) {
		out = append(out, struct{ Key, Env string }{key, EnvName(key)})
	})
	return out
}

// EnvName is the environment variable that overrides key.
func EnvName(key string) string {
	return "HUB_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

func forEachLeaf(v reflect.Value, prefix string, fn func(key string, field reflect.Value)) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		name := yamlName(t.Field(i))
		if name == "" {
			continue
		}
		f := v.Field(i)
		if f.Kind() == reflect.Struct && !isLeaf(f.Type()) {
			forEachLeaf(f, join(prefix, name), fn)
			continue
		}
		fn(join(prefix, name), f)
	}
}

// applyEnv sets every key whose HUB_* variable is present and reports
// HUB_* variables that match no key (a typo must not be silently ignored).
func applyEnv(environ []string, cfg *Config) []Problem {
	env := map[string]string{}
	for _, kv := range environ {
		if k, val, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "HUB_") {
			env[k] = val
		}
	}
	var problems []Problem
	forEachLeaf(reflect.ValueOf(cfg).Elem(), "", func(key string, f reflect.Value) {
		name := EnvName(key)
		val, ok := env[name]
		if !ok {
			return
		}
		delete(env, name)
		if err := decodeScalar(val, f); err != nil {
			problems = append(problems, Problem{Key: key, Source: "env " + name, Message: err.Error()})
		}
	})
	var unknown []string
	for name := range env {
		if name == EnvConfigPath || strings.HasPrefix(name, "HUB_TEST_") {
			continue
		}
		unknown = append(unknown, name)
	}
	sort.Strings(unknown)
	for _, name := range unknown {
		problems = append(problems, Problem{Key: name, Source: "env", Message: "unknown variable: no configuration key is called that (see configs/hub.yaml)"})
	}
	return problems
}

// decodeScalar parses an environment value with the same rules as YAML.
func decodeScalar(val string, f reflect.Value) error {
	if f.Kind() == reflect.String {
		f.SetString(val) // strings are taken verbatim: no YAML surprises with "yes" or "0123"
		return nil
	}
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(val), &n); err != nil || len(n.Content) != 1 || n.Content[0].Kind != yaml.ScalarNode {
		return fmt.Errorf("%q is not a single value", val)
	}
	if err := n.Content[0].Decode(f.Addr().Interface()); err != nil {
		return errors.New(cleanYAMLError(err))
	}
	return nil
}

var bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// Validate checks the merged configuration; each problem names its key.
func (c *Config) Validate() []Problem {
	var ps []Problem
	bad := func(key, format string, args ...any) {
		ps = append(ps, Problem{Key: key, Message: fmt.Sprintf(format, args...)})
	}
	if _, port, err := net.SplitHostPort(c.Server.Addr); err != nil || port == "" {
		bad("server.addr", "%q is not host:port (e.g. 127.0.0.1:8080)", c.Server.Addr)
	}
	if c.Server.BodyLimit < 1024 || c.Server.BodyLimit > 1<<30 {
		bad("server.body_limit", "must be between 1KiB and 1GiB, got %s", c.Server.BodyLimit)
	}
	positive := []struct {
		key string
		d   Duration
	}{
		{"server.read_timeout", c.Server.ReadTimeout}, {"server.write_timeout", c.Server.WriteTimeout},
		{"server.idle_timeout", c.Server.IdleTimeout}, {"server.shutdown_timeout", c.Server.ShutdownTimeout},
		{"server.ready_timeout", c.Server.ReadyTimeout}, {"minio.timeout", c.MinIO.Timeout},
		{"redis.timeout", c.Redis.Timeout}, {"auth.max_skew", c.Auth.MaxSkew},
		{"audit.seal_interval", c.Audit.SealInterval}, {"library.sweep_interval", c.Library.SweepInterval},
		{"lookup.access_code_ttl", c.Lookup.AccessCodeTTL}, {"lookup.use_ttl", c.Lookup.UseTTL},
		{"conversion.checkpoint_every", c.Conversion.CheckpointEvery}, {"conversion.poll", c.Conversion.Poll},
	}
	for _, p := range positive {
		if p.d <= 0 {
			bad(p.key, "must be a positive duration, got %s", p.d)
		}
	}
	if c.Auth.MaxAhead < 0 || c.Auth.MaxAhead > c.Auth.MaxSkew {
		bad("auth.max_ahead", "must be between 0 and auth.max_skew (%s), got %s",
			licensehub.HumanDuration(c.Auth.MaxSkew.D()), licensehub.HumanDuration(c.Auth.MaxAhead.D()))
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "must be one of debug, info, warn, error; got %q", c.Log.Level)
	}
	switch c.Log.Format {
	case "json", "text":
	default:
		bad("log.format", "must be json or text; got %q", c.Log.Format)
	}
	if c.EmbeddedObjects() {
		if strings.TrimSpace(c.DataDir) == "" {
			bad("data_dir", "is required when minio.endpoint is empty (the embedded store writes there)")
		}
	} else {
		if err := checkURL(c.MinIO.Endpoint, "http", "https"); err != nil {
			bad("minio.endpoint", "%v", err)
		}
		if c.MinIO.AccessKey == "" {
			bad("minio.access_key", "is required when minio.endpoint is set")
		}
		if c.MinIO.SecretKey == "" {
			bad("minio.secret_key", "is required when minio.endpoint is set")
		}
		if !bucketName.MatchString(c.MinIO.Bucket) {
			bad("minio.bucket", "%q is not a valid bucket name (3-63 chars of a-z, 0-9, '.', '-')", c.MinIO.Bucket)
		}
	}
	if strings.TrimSpace(c.Signing.KeysDir) == "" {
		bad("signing.keys_dir", "is required: the keyring of the issuing authorities' keys lives there")
	}
	if d := c.Library.IssueDateSkewDays; d < 0 || d > 7 {
		bad("library.issue_date_skew_days", "must be between 0 and 7 days, got %d", d)
	}
	if c.Audit.SegmentRecords < 1 || c.Audit.SegmentRecords > 1_000_000 {
		bad("audit.segment_records", "must be between 1 and 1000000, got %d", c.Audit.SegmentRecords)
	}
	if d := c.Adapters.CertificateValidity; d < Duration(time.Hour) || d > Duration(90*24*time.Hour) {
		bad("adapters.certificate_validity", "must be between 1h and 90 days, got %s", d)
	}
	for name, u := range map[string]Upstream{"publicsecurity": c.Adapters.PublicSecurity,
		"socialsecurity": c.Adapters.SocialSecurity, "tax": c.Adapters.Tax} {
		u.validate("adapters."+name, bad)
	}
	if strings.TrimSpace(c.Lookup.MattersFile) == "" {
		bad("lookup.matters_file", "is required: the service matters and their materials")
	}
	if strings.TrimSpace(c.Catalog.Dir) == "" {
		bad("catalog.dir", "is required: the license catalog lives there")
	}
	if strings.TrimSpace(c.Authorities.File) == "" {
		bad("authorities.file", "is required: the registry of issuing authorities")
	}
	if strings.TrimSpace(c.Auth.MembersFile) == "" {
		bad("auth.members_file", "is required: the registry of member systems")
	}
	c.Conversion.validate(bad)
	c.Exchange.validate(bad)
	if !c.Demo.Enabled && len(c.Audit.HolderKey) < 32 {
		bad("audit.holder_key", "must be at least 32 characters outside demo mode (it keys the holder-code hashes in the audit trail)")
	}
	if strings.TrimSpace(c.Audit.JournalDir) == "" {
		bad("audit.journal_dir", "is required (each instance's audit journal lives there, with Redis too)")
	}
	if !c.EmbeddedKV() {
		if err := checkURL(c.Redis.URL, "redis", "rediss"); err != nil {
			bad("redis.url", "%v", err)
		}
	}
	return ps
}

func checkURL(raw string, schemes ...string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%q is not a URL", raw)
	}
	if u.User != nil {
		return fmt.Errorf("must not carry credentials; use the password/secret key instead")
	}
	okScheme := false
	for _, s := range schemes {
		okScheme = okScheme || u.Scheme == s
	}
	if !okScheme {
		return fmt.Errorf("%q must start with %s://", raw, strings.Join(schemes, ":// or "))
	}
	if u.Hostname() == "" {
		return fmt.Errorf("%q has no host", raw)
	}
	return nil
}

func structFields(t reflect.Type) map[string]int {
	m := map[string]int{}
	for i := 0; i < t.NumField(); i++ {
		if name := yamlName(t.Field(i)); name != "" {
			m[name] = i
		}
	}
	return m
}

func yamlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "-" || !f.IsExported() {
		return ""
	}
	return name
}

// isLeaf reports whether a struct type is a value (decoded whole), not a
// section of keys.
func isLeaf(t reflect.Type) bool {
	return reflect.PointerTo(t).Implements(reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem())
}

func join(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

func orRoot(s string) string {
	if s == "" {
		return "(top level)"
	}
	return s
}

// suggest offers the closest known key for a typo.
func suggest(got string, fields map[string]int) string {
	best, bestD := "", 3
	for name := range fields {
		if d := distance(got, name); d < bestD {
			best, bestD = name, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// cleanYAMLError drops yaml.v3's "yaml: unmarshal errors:\n  line N:" noise.
func cleanYAMLError(err error) string {
	s := err.Error()
	s = strings.TrimPrefix(s, "yaml: unmarshal errors:\n")
	s = strings.TrimSpace(s)
	if i := strings.Index(s, ": "); strings.HasPrefix(s, "line ") && i > 0 {
		s = s[i+2:]
	}
	return s
}

// Dump renders the effective configuration as YAML with secrets redacted,
// for `hub -print-config`.
func (c *Config) Dump() string {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	_ = enc.Encode(c)
	return buf.String()
}

func (v Conversion) validate(bad func(key, format string, args ...any)) {
	if strings.TrimSpace(v.MappingsDir) == "" {
		bad("conversion.mappings_dir", "is required: the legacy sources' mappings live there")
	}
	if v.Workers < 1 || v.Workers > 1024 {
		bad("conversion.workers", "must be 1..1024, got %d", v.Workers)
	}
	if v.CheckpointRows < 1 || v.CheckpointRows > 1_000_000 {
		bad("conversion.checkpoint_rows", "must be 1..1000000, got %d", v.CheckpointRows)
	}
	if v.LeaseTTL < Duration(time.Second) {
		bad("conversion.lease_ttl", "must be at least 1s, got %s", v.LeaseTTL)
	}
	if v.MaxUpload < 1024 || v.MaxUpload > 1<<40 {
		bad("conversion.max_upload", "must be between 1KiB and 1024GiB, got %s", v.MaxUpload)
	}
	if v.XLSXMaxUnzipped < 1<<20 || v.XLSXMaxUnzipped > 1<<40 {
		bad("conversion.xlsx_max_unzipped", "must be between 1MiB and 1024GiB, got %s", v.XLSXMaxUnzipped)
	}
}

func (v Exchange) validate(bad func(key, format string, args ...any)) {
	if v.Enabled || v.ProvinceURL != "" {
		if v.ProvinceURL == "" {
			bad("exchange.province_url", "is required when exchange.enabled is true (an absolute http(s) URL)")
		} else if err := checkURL(v.ProvinceURL, "http", "https"); err != nil {
			bad("exchange.province_url", "%v", err)
		}
	}
	if v.Concurrency < 1 || v.Concurrency > 1024 {
		bad("exchange.concurrency", "must be 1..1024, got %d", v.Concurrency)
	}
	if v.MaxAttempts < 1 || v.MaxAttempts > 100 {
		bad("exchange.max_attempts", "must be 1..100, got %d", v.MaxAttempts)
	}
	if v.CheckpointEvents < 2 || v.CheckpointEvents > 1000000 {
		bad("exchange.checkpoint_events", "must be 2..1000000, got %d", v.CheckpointEvents)
	}
	for _, d := range []struct {
		key string
		v   Duration
	}{{"exchange.max_retry_after", v.MaxRetryAfter}, {"exchange.timeout", v.Timeout}, {"exchange.feed_settle", v.FeedSettle}} {
		if d.v <= 0 {
			bad(d.key, "must be a positive duration, got %s", d.v)
		}
	}
	if v.LeaseTTL < Duration(time.Second) {
		bad("exchange.lease_ttl", "must be at least 1s, got %s", v.LeaseTTL)
	}
}

func (u Upstream) validate(key string, bad func(key, format string, args ...any)) {
	if u.Algorithm != "sm3" && u.Algorithm != "sha256" {
		bad(key+".algorithm", "must be sm3 or sha256, got %q", u.Algorithm)
	}
	if u.Timeout <= 0 || u.MaxRetryAfter <= 0 || u.BreakerOpen <= 0 {
		bad(key, "timeout, max_retry_after and breaker_open_for must be positive durations")
	}
	if u.MaxAttempts < 1 || u.MaxAttempts > 10 {
		bad(key+".max_attempts", "must be 1..10, got %d", u.MaxAttempts)
	}
	if u.Concurrency < 1 || u.Concurrency > 1024 {
		bad(key+".concurrency", "must be 1..1024, got %d", u.Concurrency)
	}
	if u.BreakerFails < 1 {
		bad(key+".breaker_failures", "must be at least 1, got %d", u.BreakerFails)
	}
	if u.BaseURL == "" {
		return
	}
	if err := checkURL(u.BaseURL, "http", "https"); err != nil {
		bad(key+".base_url", "%v", err)
	}
	if u.AppKey == "" {
		bad(key+".app_key", "is required with a base_url")
	}
	if len(u.Secret) < 16 {
		bad(key+".secret", "is required with a base_url (at least 16 characters)")
	}
}
