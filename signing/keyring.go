package signing

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emmansun/gmsm/pkcs"
	"github.com/emmansun/gmsm/pkcs8"
	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"
	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/ident"
	"gopkg.in/yaml.v3"
)

// The file keyring is a directory (configured as signing.keys_dir) holding
// keyring.yaml, which lists the keys, and the key files it names. See
// keyringHeader for the format; OpenKeyring for what is checked.

// KeyringFile is the name of the keyring's index inside its directory.
const KeyringFile = "keyring.yaml"

const (
	// keyringVersion is the only keyring.yaml format this code reads.
	keyringVersion = 1
	// lockFile serialises read-modify-write of keyring.yaml across
	// processes (concurrent hubctl invocations).
	lockFile = KeyringFile + ".lock"
)

// keyringHeader is the comment at the top of every keyring.yaml the
// management functions write. headerMarker finds it again.
const (
	headerMarker  = "licensehub keyring"
	keyringHeader = `# licensehub keyring: the SM2 signing keys of the issuing authorities.
#
# Every entry under keys: is one key. Paths are relative to this directory.
#   kid             hex of the first 16 bytes of SM3(SubjectPublicKeyInfo DER);
#                   the hub recomputes it from the key file and refuses a mismatch
#   authority       the issuing authority's unified social credit code (GB 32100)
#   file            the PKCS#8 PEM private key, mode 0600 (never group/world
#                   readable); may be encrypted (PBES2: PBKDF2-HMAC-SM3, SM4-CBC)
#   public_key      optional: the PEM public key (not secret)
#   certificate     optional: PEM SM2 X.509 certificate of the key, then any
#                   intermediates; required for every key when the hub has
#                   trust roots configured
#   not_before      RFC 3339 times: the key signs, and its signatures verify,
#   not_after       only in between (both included)
#   state           active (signs; at most one per authority), retired or compromised
#   retired_at      required when retired: signatures claiming this time or later fail
#   compromised_at  required when compromised: signatures claiming this time or later fail
#
# Change keys with "hubctl keys gen" and "hubctl keys rotate": they lock this
# file (keyring.yaml.lock) and rewrite it atomically. A key is never deleted:
# its old signatures must stay verifiable. The hub checks all of it at start.`
)

// keyEncrypter encrypts the private key files Generate and Rotate write
// when given a password: PBES2 (RFC 8018) with PBKDF2-HMAC-SM3 and SM4-CBC
// under the standard OIDs, which OpenSSL 3 reads too.
var keyEncrypter = pkcs.NewPBESEncrypter(pkcs.SM4CBC, pkcs.NewPBKDF2Opts(pkcs.SM3, 16, 300_000))

// lockWait is how long a management function waits for another holder of
// the lock file before giving up.
var lockWait = 15 * time.Second

// ---------------------------------------------------------------------
// Options

// Option configures OpenKeyring.
type Option func(*keyringOptions)

type keyringOptions struct {
	password func(kid string) ([]byte, error)
	roots    *smx509.CertPool
	rootsErr error
	clock    func() time.Time
}

// WithPassword gives the passwords of encrypted key files: fn is called
// with the kid of each encrypted key. Unencrypted key files need none.
func WithPassword(fn func(kid string) ([]byte, error)) Option {
	return func(o *keyringOptions) { o.password = fn }
}

// WithSinglePassword is WithPassword with one password for every key.
func WithSinglePassword(password []byte) Option {
	pw := bytes.Clone(password)
	return WithPassword(func(string) ([]byte, error) { return pw, nil })
}

// WithTrustRoots makes the keyring a PKI one: pemBytes holds the SM2 root
// CA certificates. Then every key must have a certificate that chains to
// one of them (through intermediates that follow it in its certificate
// file); a key without one is refused, since the operator asked for
// certified keys.
func WithTrustRoots(pemBytes []byte) Option {
	roots, err := parseTrustRoots(pemBytes)
	return func(o *keyringOptions) { o.roots, o.rootsErr = roots, err }
}

// WithClock sets the keyring's clock (default time.Now); it dates
// exported bundles.
func WithClock(fn func() time.Time) Option {
	return func(o *keyringOptions) {
		if fn != nil {
			o.clock = fn
		}
	}
}

// parseTrustRoots reads PEM CERTIFICATE blocks of SM2 CA certificates.
func parseTrustRoots(data []byte) (*smx509.CertPool, error) {
	certs, err := decodeCertificatesPEM(data)
	if err != nil {
		return nil, err
	}
	pool := smx509.NewCertPool()
	for i, c := range certs {
		if !c.BasicConstraintsValid || !c.IsCA {
			return nil, fmt.Errorf("certificate %d (%q) is not a CA certificate", i+1, c.Subject.String())
		}
		if pub, ok := c.PublicKey.(*ecdsa.PublicKey); !ok || !sm2.IsSM2PublicKey(pub) {
			return nil, fmt.Errorf("certificate %d (%q) does not hold an SM2 key", i+1, c.Subject.String())
		}
		pool.AddCert(c)
	}
	return pool, nil
}

// ---------------------------------------------------------------------
// The keyring

// Keyring is an opened, fully checked file keyring. It is immutable and
// safe for concurrent use; reopen it to see changes on disk. It holds the
// private keys of the active keys only (the others are read to be
// checked, then dropped) and never prints them: see String and LogValue.
type Keyring struct {
	dir   string
	clock func() time.Time
	keys  []*ringKey // ordered by authority, NotBefore, kid
	byKID map[string]*ringKey
}

// ringKey is one key of a Keyring. signer is set for active keys only.
type ringKey struct {
	info   KeyInfo
	signer *KeySigner
}

// String describes k without key material.
func (r *ringKey) String() string { return "signing key " + r.info.KeyID }

// LogValue describes k without key material.
func (r *ringKey) LogValue() slog.Value { return r.info.LogValue() }

// OpenKeyring opens the keyring in dir and checks everything, refusing
// with an *licensehub.Error (EINVALID, one line per problem naming the
// file, entry and field) when anything is wrong:
//
//   - keyring.yaml: one YAML document, version 1, no unknown fields;
//   - every entry: kid of 32 lower-case hex digits, unique; authority a
//     valid unified social credit code; not_before < not_after (RFC 3339);
//     state active, retired (with retired_at) or compromised (with
//     compromised_at); an active key has neither time; at most one active
//     key per authority; paths relative and inside dir;
//   - the key file: a regular file not readable by group or others
//     (mode & 0o077 == 0; not checked on Windows); one PKCS#8 PEM block,
//     encrypted or not; decrypts with the password; holds an SM2 key whose
//     KeyID is the entry's kid;
//   - public_key, when given: the same public key;
//   - certificate, when given: certifies this key, covers [not_before,
//     not_after], allows signing; with trust roots configured it is
//     required and must chain to a root (checked at not_before).
//
// The messages never contain key material.
func OpenKeyring(dir string, opts ...Option) (*Keyring, error) {
	o := keyringOptions{clock: time.Now}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if o.rootsErr != nil {
		return nil, licensehub.Wrap(o.rootsErr, licensehub.EINVALID, "keyring %s: trust roots", dir)
	}
	doc, err := readKeyringDoc(dir, false)
	if err != nil {
		return nil, err
	}
	entries, ps := doc.entries()
	k := &Keyring{dir: dir, clock: o.clock, byKID: make(map[string]*ringKey, len(entries))}
	for _, e := range entries {
		rk, eps := doc.loadEntry(e, &o)
		ps = append(ps, eps...)
		if rk != nil {
			k.keys = append(k.keys, rk)
		}
	}
	if err := ps.Err("keyring " + doc.path); err != nil {
		return nil, err
	}
	slices.SortFunc(k.keys, func(a, b *ringKey) int { return compareKeys(a.info, b.info) })
	for _, rk := range k.keys {
		k.byKID[rk.info.KeyID] = rk
	}
	return k, nil
}

// compareKeys orders keys by authority, then NotBefore, then kid.
func compareKeys(a, b KeyInfo) int {
	if c := strings.Compare(a.Authority, b.Authority); c != 0 {
		return c
	}
	if c := a.NotBefore.Compare(b.NotBefore); c != 0 {
		return c
	}
	return strings.Compare(a.KeyID, b.KeyID)
}

// Dir is the keyring's directory.
func (k *Keyring) Dir() string { return k.dir }

// String describes the keyring without key material.
func (k *Keyring) String() string {
	active := 0
	for _, rk := range k.keys {
		if rk.signer != nil {
			active++
		}
	}
	return fmt.Sprintf("signing.Keyring(%s: %d keys, %d active)", k.dir, len(k.keys), active)
}

// GoString is String, so that %#v prints no key material either.
func (k *Keyring) GoString() string { return k.String() }

// LogValue describes the keyring without key material.
func (k *Keyring) LogValue() slog.Value {
	kids := make([]string, len(k.keys))
	for i, rk := range k.keys {
		kids[i] = rk.info.KeyID
	}
	return slog.GroupValue(slog.String("dir", k.dir), slog.Any("kids", kids))
}

// SignerFor returns the signer of the authority's active key when that
// key may sign at the given time. Otherwise the error has code
// EKEYNOTFOUND and says why: no key for the authority, none active (and
// what became of the last one), or the active key is not valid at that
// time.
func (k *Keyring) SignerFor(authority string, at time.Time) (Signer, error) {
	notFound := func(format string, args ...any) *licensehub.Error {
		return &licensehub.Error{
			Code:    licensehub.EKEYNOTFOUND,
			Message: fmt.Sprintf(format, args...),
			Details: map[string]any{"authority": authority, "at": fmtTime(at)},
		}
	}
	var newest *ringKey
	for _, rk := range k.keys {
		if rk.info.Authority != authority {
			continue
		}
		if rk.signer != nil {
			if err := rk.info.CanSignAt(at); err != nil {
				e := notFound("authority %s has no key that can sign at %s: %s", authority, fmtTime(at), licensehub.Message(err))
				e.Details["kid"], e.Details["rule"] = rk.info.KeyID, errRule(err)
				return nil, e
			}
			return rk.signer, nil
		}
		newest = rk // keys are ordered by NotBefore: the last one wins
	}
	if newest == nil {
		if err := ident.ValidateCreditCode(authority); err != nil {
			return nil, notFound("no signing key for %q: not a valid unified social credit code (%s)", authority, licensehub.Message(err))
		}
		// The keyring's directory is the operators' business: it goes to
		// the log (Err), not to the client.
		e := notFound("the hub's keyring has no key for authority %s; create one with `hubctl keys gen`", authority)
		e.Err = fmt.Errorf("keyring %s", k.dir)
		return nil, e
	}
	return nil, notFound("authority %s has no active key (its newest, %s, is %s); create one with `hubctl keys gen`",
		authority, newest.info.KeyID, newest.info.State)
}

// Key returns the key with the given ID, or an EKEYNOTFOUND error.
func (k *Keyring) Key(kid string) (KeyInfo, error) {
	rk, ok := k.byKID[kid]
	if !ok {
		return KeyInfo{}, &licensehub.Error{
			Code:    licensehub.EKEYNOTFOUND,
			Message: fmt.Sprintf("no key with kid %q", kid), // no server path: this answers a public route
			Details: map[string]any{"kid": kid},
		}
	}
	return rk.info.clone(), nil
}

// Keys lists every key, ordered by authority then NotBefore.
func (k *Keyring) Keys() []KeyInfo {
	out := make([]KeyInfo, len(k.keys))
	for i, rk := range k.keys {
		out[i] = rk.info.clone()
	}
	return out
}

// ---------------------------------------------------------------------
// keyring.yaml

// keyringFile is keyring.yaml. Times are strings so that the keyring
// parses them itself (RFC 3339 only) with messages naming the field.
type keyringFile struct {
	Version int        `yaml:"version"`
	Keys    []keyEntry `yaml:"keys"`
}

type keyEntry struct {
	KID           string `yaml:"kid"`
	Authority     string `yaml:"authority"`
	File          string `yaml:"file"`
	PublicKey     string `yaml:"public_key"`
	Certificate   string `yaml:"certificate"`
	NotBefore     string `yaml:"not_before"`
	NotAfter      string `yaml:"not_after"`
	State         string `yaml:"state"`
	RetiredAt     string `yaml:"retired_at"`
	CompromisedAt string `yaml:"compromised_at"`
}

// keyringDoc is keyring.yaml as read: the strict decode and, for line
// numbers and comment-preserving edits, the node tree.
type keyringDoc struct {
	dir  string
	path string
	mode fs.FileMode // of the existing file; 0 when new
	file keyringFile
	root *yaml.Node // the document node
}

// readKeyringDoc reads dir/keyring.yaml. A missing file is an error, or,
// with create, a new empty keyring with the header comment.
func readKeyringDoc(dir string, create bool) (*keyringDoc, error) {
	d := &keyringDoc{dir: dir, path: filepath.Join(dir, KeyringFile)}
	raw, err := os.ReadFile(d.path)
	switch {
	case err == nil:
		if fi, err := os.Stat(d.path); err == nil {
			d.mode = fi.Mode().Perm()
		}
	case errors.Is(err, fs.ErrNotExist) && create:
		raw = []byte(keyringHeader + "\n\nversion: " + strconv.Itoa(keyringVersion) + "\nkeys: []\n")
	case errors.Is(err, fs.ErrNotExist):
		return nil, &licensehub.Error{
			Code:    licensehub.EINVALID,
			Field:   "signing.keys_dir",
			Message: fmt.Sprintf("no keyring at %s: create the first key with `hubctl keys gen`", d.path),
			Err:     err,
		}
	default:
		return nil, licensehub.Wrap(err, licensehub.EUNAVAILABLE, "read keyring %s", d.path)
	}
	if err := d.parse(raw); err != nil {
		return nil, err
	}
	return d, nil
}

// parse decodes raw strictly into d.file and into d.root.
func (d *keyringDoc) parse(raw []byte) error {
	invalid := func(format string, args ...any) error {
		return &licensehub.Error{Code: licensehub.EINVALID, Message: d.path + ": " + fmt.Sprintf(format, args...)}
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	var f keyringFile
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return invalid("empty; want version: %d and keys:", keyringVersion)
		}
		return invalid("%s", friendlyYAMLError(err))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return invalid("more than one YAML document (a second --- ?); the keyring is one document")
	}
	var root yaml.Node
	if err := yaml.Unmarshal(raw, &root); err != nil {
		return invalid("%s", friendlyYAMLError(err))
	}
	if root.Kind != yaml.DocumentNode || len(root.Content) != 1 || root.Content[0].Kind != yaml.MappingNode {
		return invalid("the top level must be a mapping with version: and keys:")
	}
	d.file, d.root = f, &root
	return nil
}

// friendlyYAMLError rewords yaml.v3's errors about Go types in the
// keyring's terms.
func friendlyYAMLError(err error) string {
	s := err.Error()
	s = strings.ReplaceAll(s, "not found in type signing.keyEntry",
		"is not a key field (known: kid, authority, file, public_key, certificate, not_before, not_after, state, retired_at, compromised_at)")
	s = strings.ReplaceAll(s, "not found in type signing.keyringFile", "is not a keyring field (known: version, keys)")
	return s
}

// ringEntry is one parsed, structurally checked item of keys:.
type ringEntry struct {
	index         int
	node          *yaml.Node // its mapping node, for line numbers and edits
	raw           keyEntry
	state         KeyState
	notBefore     time.Time
	notAfter      time.Time
	retiredAt     *time.Time
	compromisedAt *time.Time
}

// info is the entry's KeyInfo, without the public key.
func (e *ringEntry) info() KeyInfo {
	return KeyInfo{
		KeyID:         e.raw.KID,
		Authority:     e.raw.Authority,
		Algorithm:     Algorithm,
		NotBefore:     e.notBefore,
		NotAfter:      e.notAfter,
		State:         e.state,
		RetiredAt:     e.retiredAt,
		CompromisedAt: e.compromisedAt,
	}
}

// problem builds a problem about field of entry e (field "" for the whole
// entry), located by line.
func (d *keyringDoc) problem(e *ringEntry, field, format string, args ...any) licensehub.Problem {
	line := e.node.Line
	if field != "" {
		if kn := mappingKey(e.node, field); kn != nil {
			line = kn.Line
		}
	}
	where := fmt.Sprintf("%s:%d: keys[%d]", d.path, line, e.index)
	if e.raw.KID != "" {
		where += " (kid " + e.raw.KID + ")"
	}
	f := fmt.Sprintf("keys[%d]", e.index)
	msg := fmt.Sprintf(format, args...)
	if field != "" {
		f += "." + field
		msg = field + ": " + msg
	}
	return licensehub.Problem{Field: f, Msg: where + ": " + msg}
}

// keysNode is the sequence node of keys:, or nil when there is none.
func (d *keyringDoc) keysNode() *yaml.Node {
	n := mappingValue(d.root.Content[0], "keys")
	if n == nil || n.Kind != yaml.SequenceNode {
		return nil
	}
	return n
}

// entries parses and structurally checks every entry: everything that
// needs no file. Entries are returned even when they have licensehub.Problems, so
// that their files are checked too.
func (d *keyringDoc) entries() ([]*ringEntry, licensehub.Problems) {
	var ps licensehub.Problems
	fileProblem := func(format string, args ...any) {
		ps = append(ps, licensehub.Problem{Msg: d.path + ": " + fmt.Sprintf(format, args...)})
	}
	switch v := d.file.Version; {
	case v == 0:
		fileProblem("version: missing; this hub reads version: %d", keyringVersion)
	case v != keyringVersion:
		fileProblem("version: %d is not supported; this hub reads version: %d", v, keyringVersion)
	}
	seq := d.keysNode()
	if len(d.file.Keys) > 0 && (seq == nil || len(seq.Content) != len(d.file.Keys)) {
		// Cannot happen for a file that decoded; refuse rather than
		// mislabel lines.
		fileProblem("keys: cannot be read as a list")
		return nil, ps
	}
	entries := make([]*ringEntry, 0, len(d.file.Keys))
	kids := map[string]*ringEntry{}
	active := map[string]*ringEntry{}
	for i, raw := range d.file.Keys {
		e := &ringEntry{index: i, node: seq.Content[i], raw: raw, state: KeyState(raw.State)}
		entries = append(entries, e)
		e.notBefore = d.parseTime(e, "not_before", raw.NotBefore, &ps)
		e.notAfter = d.parseTime(e, "not_after", raw.NotAfter, &ps)
		if raw.RetiredAt != "" {
			t := d.parseTime(e, "retired_at", raw.RetiredAt, &ps)
			e.retiredAt = &t
		}
		if raw.CompromisedAt != "" {
			t := d.parseTime(e, "compromised_at", raw.CompromisedAt, &ps)
			e.compromisedAt = &t
		}
		// A time that did not parse was reported above; do not report
		// it again as "missing".
		nb, na := e.notBefore, e.notAfter
		if nb.IsZero() && raw.NotBefore != "" || na.IsZero() && raw.NotAfter != "" {
			nb, na = time.Unix(0, 0), time.Unix(1, 0)
		}
		for _, p := range checkKeyFields(raw.KID, raw.Authority, nb, na, e.state, e.retiredAt, e.compromisedAt) {
			ps = append(ps, d.problem(e, p.Field, "%s", p.Msg))
		}
		if raw.File == "" {
			ps = append(ps, d.problem(e, "file", "missing: the private key file, relative to %s", d.dir))
		}
		for _, f := range []struct{ name, value string }{{"file", raw.File}, {"public_key", raw.PublicKey}, {"certificate", raw.Certificate}} {
			if f.value != "" && !filepath.IsLocal(f.value) {
				ps = append(ps, d.problem(e, f.name, "%q must be a relative path inside %s", f.value, d.dir))
			}
		}
		if raw.KID != "" {
			if prev, dup := kids[raw.KID]; dup {
				ps = append(ps, d.problem(e, "kid", "duplicate: keys[%d] has the same kid", prev.index))
			}
			kids[raw.KID] = e
		}
		if e.state == StateActive && raw.Authority != "" {
			if prev, dup := active[raw.Authority]; dup {
				ps = append(ps, d.problem(e, "state", "authority %s already has an active key, keys[%d] (kid %s); at most one key per authority is active (retire one: `hubctl keys rotate`)",
					raw.Authority, prev.index, prev.raw.KID))
			}
			active[raw.Authority] = e
		}
	}
	return entries, ps
}

// parseTime parses an RFC 3339 time of field and returns it in UTC; a
// problem is added when it does not parse. An empty s gives the zero time
// (checkKeyFields reports it when the field is required).
func (d *keyringDoc) parseTime(e *ringEntry, field, s string, ps *licensehub.Problems) time.Time {
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		*ps = append(*ps, d.problem(e, field, "%q is not an RFC 3339 time with a zone, such as 2025-01-01T00:00:00+08:00", s))
		return time.Time{}
	}
	return t.UTC()
}

// loadEntry reads an entry's files and checks them against it and each
// other. It returns the key (nil when anything is wrong) and the problems.
func (d *keyringDoc) loadEntry(e *ringEntry, o *keyringOptions) (*ringKey, licensehub.Problems) {
	var ps licensehub.Problems
	add := func(field, format string, args ...any) { ps = append(ps, d.problem(e, field, format, args...)) }
	if e.raw.File == "" || !filepath.IsLocal(e.raw.File) {
		return nil, nil // reported by entries
	}
	keyPath := filepath.Join(d.dir, e.raw.File)
	var password func() ([]byte, error)
	if o.password != nil {
		password = func() ([]byte, error) { return o.password(e.raw.KID) }
	}
	priv, err := loadPrivateKey(keyPath, password)
	if err != nil {
		add("file", "%v", err)
		return nil, ps
	}
	pub := copyPublicKey(&priv.PublicKey)
	if e.raw.KID != "" {
		if err := checkKeyID(e.raw.KID, pub); err != nil {
			add("kid", "%s (key file %s)", licensehub.Message(err), keyPath)
		}
	}
	if e.raw.PublicKey != "" {
		p := filepath.Join(d.dir, e.raw.PublicKey)
		if data, err := os.ReadFile(p); err != nil {
			add("public_key", "%v", err)
		} else if filePub, err := decodePublicKeyPEM(data); err != nil {
			add("public_key", "%s: %v", p, err)
		} else if !filePub.Equal(pub) {
			add("public_key", "%s is not the public key of %s", p, keyPath)
		}
	}
	info := e.info()
	info.PublicKey = pub
	info.PublicKeyPEM, err = encodePublicKeyPEM(pub)
	if err != nil {
		add("file", "%s: encode public key: %v", keyPath, err)
	}
	switch {
	case e.raw.Certificate != "":
		p := filepath.Join(d.dir, e.raw.Certificate)
		certPEM, err := checkCertificateFile(p, pub, info.NotBefore, info.NotAfter, o.roots)
		if err != nil {
			add("certificate", "%s: %v", p, err)
		}
		info.CertificatePEM = certPEM
	case o.roots != nil:
		add("certificate", "missing: trust roots are configured, so every key needs a certificate chaining to them; issue one for this key and name its PEM file here")
	}
	if len(ps) > 0 {
		return nil, ps
	}
	rk := &ringKey{info: info}
	if info.State == StateActive {
		rk.signer = NewKeySigner(priv, info.clone())
	}
	return rk, nil
}

// copyPublicKey returns a copy of pub that does not keep the private key
// it came from reachable.
func copyPublicKey(pub *ecdsa.PublicKey) *ecdsa.PublicKey {
	return &ecdsa.PublicKey{Curve: pub.Curve, X: new(big.Int).Set(pub.X), Y: new(big.Int).Set(pub.Y)}
}

// loadPrivateKey reads an SM2 private key from a PKCS#8 PEM file,
// refusing a file that group or others can read. password is asked for
// only when the file is encrypted; it may be nil. Errors name the file and
// never contain key material.
func loadPrivateKey(path string, password func() ([]byte, error)) (*sm2.PrivateKey, error) {
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("key file %s does not exist", path)
		}
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("key file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return nil, fmt.Errorf("%s is readable by group/others (mode %04o); chmod 600 it", path, perm)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	defer clear(raw)
	block, rest := pem.Decode(raw)
	if block == nil {
		return nil, fmt.Errorf("%s holds no PEM block; want a PKCS#8 key (BEGIN PRIVATE KEY or BEGIN ENCRYPTED PRIVATE KEY)", path)
	}
	defer clear(block.Bytes)
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("%s has data after its first PEM block; keep one key per file", path)
	}
	if len(block.Headers) != 0 {
		return nil, fmt.Errorf("%s is a legacy encrypted PEM (Proc-Type headers); convert it to PKCS#8 with `openssl pkcs8 -topk8`", path)
	}
	var priv *sm2.PrivateKey
	switch block.Type {
	case "PRIVATE KEY":
		priv, err = pkcs8.ParsePKCS8PrivateKeySM2(block.Bytes)
	case "ENCRYPTED PRIVATE KEY":
		if password == nil {
			return nil, fmt.Errorf("%s is encrypted; give the keyring its password", path)
		}
		pw, perr := password()
		if perr != nil {
			return nil, fmt.Errorf("%s is encrypted and its password is unavailable: %v", path, perr)
		}
		if len(pw) == 0 {
			return nil, fmt.Errorf("%s is encrypted and its password is empty", path)
		}
		priv, err = pkcs8.ParsePKCS8PrivateKeySM2(block.Bytes, pw)
		// A wrong password usually fails the padding check; about one
		// time in 256 the padding happens to pass and the garbage fails
		// to parse instead: the same cause.
		if err != nil && !errors.Is(err, pkcs8.ErrUnexpectedKeyType) {
			return nil, fmt.Errorf("%s cannot be decrypted: wrong password (or a damaged file)", path)
		}
	default:
		return nil, fmt.Errorf("%s holds a %q PEM block; want PKCS#8 (BEGIN PRIVATE KEY or BEGIN ENCRYPTED PRIVATE KEY); convert with `openssl pkcs8 -topk8`", path, block.Type)
	}
	switch {
	case errors.Is(err, pkcs8.ErrUnexpectedKeyType):
		return nil, fmt.Errorf("%s holds a key that is not SM2", path)
	case err != nil:
		// The parsers' messages describe structure, never key bytes.
		return nil, fmt.Errorf("%s is not a readable PKCS#8 SM2 private key: %v", path, err)
	}
	return priv, nil
}

// checkCertificateFile reads a key's certificate file (its certificate,
// then intermediates), checks it against the key and, with roots, the
// chain; it returns the file's certificates re-encoded as PEM.
func checkCertificateFile(path string, pub *ecdsa.PublicKey, notBefore, notAfter time.Time, roots *smx509.CertPool) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	certs, err := decodeCertificatesPEM(data)
	if err != nil {
		return "", err
	}
	leaf := certs[0]
	if err := checkLeafCertificate(leaf, pub, notBefore, notAfter); err != nil {
		return "", err
	}
	if roots != nil {
		inter := smx509.NewCertPool()
		for _, c := range certs[1:] {
			inter.AddCert(c)
		}
		_, err := leaf.Verify(smx509.VerifyOptions{
			Roots:         roots,
			Intermediates: inter,
			CurrentTime:   notBefore,
			KeyUsages:     []smx509.ExtKeyUsage{smx509.ExtKeyUsageAny},
		})
		if err != nil {
			return "", fmt.Errorf("certificate %q does not chain to the configured trust roots: %v", leaf.Subject.String(), err)
		}
	}
	return encodeCertificatesPEM(certs), nil
}

// ---------------------------------------------------------------------
// Management: hubctl keys gen / rotate, and marking a key compromised

// Generate creates the first active key of an authority in the keyring at
// dir: the directory (mode 0700) and keyring.yaml are created if needed,
// the private key is written to <kid>.key.pem (mode 0600, PKCS#8,
// encrypted when password is not empty) and its public key to
// <kid>.pub.pem, then the key is appended to keyring.yaml. Every file is
// written atomically (temp file, fsync, rename) under the keyring's lock
// file. Times are truncated to the second and kept in UTC.
//
// It refuses (ECONFLICT) when the authority already has an active key:
// replace that one with Rotate. It also refuses to edit a keyring.yaml
// that has licensehub.Problems (see OpenKeyring; key files are not read).
func Generate(dir, authority string, notBefore, notAfter time.Time, password []byte) (KeyInfo, error) {
	notBefore, notAfter = normTime(notBefore), normTime(notAfter)
	if err := checkNewKey(authority, notBefore, notAfter); err != nil {
		return KeyInfo{}, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return KeyInfo{}, licensehub.Wrap(err, licensehub.EUNAVAILABLE, "create keyring directory %s", dir)
	}
	var info KeyInfo
	err := editKeyring(dir, true, func(d *keyringDoc, entries []*ringEntry) (func(), error) {
		if e := activeEntry(entries, authority); e != nil {
			return nil, &licensehub.Error{
				Code:    licensehub.ECONFLICT,
				Field:   "authority",
				Message: fmt.Sprintf("authority %s already has an active key (kid %s); replace it with `hubctl keys rotate`", authority, e.raw.KID),
				Details: map[string]any{"authority": authority, "kid": e.raw.KID},
			}
		}
		var undo func()
		var err error
		info, undo, err = createKey(dir, authority, notBefore, notAfter, password)
		if err != nil {
			return nil, err
		}
		d.appendEntry(info)
		return undo, nil
	})
	if err != nil {
		return KeyInfo{}, err
	}
	return info, nil
}

// Rotate replaces the authority's active key: a new active key valid from
// now to notAfter is created (as in Generate) and the old one becomes
// retired with retired_at = now, in one atomic edit of keyring.yaml. The
// old key's signatures dated before now still verify; it signs no more.
// It returns both keys; the retired key's PublicKey is read from its
// public_key or certificate file, or from the key file (unencrypted, or
// encrypted with password), and is nil only when none of these works.
// No active key gives EKEYNOTFOUND: use Generate.
func Rotate(dir, authority string, now, notAfter time.Time, password []byte) (newKey KeyInfo, retired KeyInfo, err error) {
	now, notAfter = normTime(now), normTime(notAfter)
	if err := checkNewKey(authority, now, notAfter); err != nil {
		return KeyInfo{}, KeyInfo{}, err
	}
	err = editKeyring(dir, false, func(d *keyringDoc, entries []*ringEntry) (func(), error) {
		old := activeEntry(entries, authority)
		if old == nil {
			return nil, &licensehub.Error{
				Code:    licensehub.EKEYNOTFOUND,
				Field:   "authority",
				Message: fmt.Sprintf("authority %s has no active key to rotate; create one with `hubctl keys gen`", authority),
				Details: map[string]any{"authority": authority},
			}
		}
		var undo func()
		var err error
		newKey, undo, err = createKey(dir, authority, now, notAfter, password)
		if err != nil {
			return nil, err
		}
		setScalar(old.node, "state", string(StateRetired), "!!str")
		setScalar(old.node, "retired_at", now.Format(time.RFC3339), "!!timestamp")
		d.appendEntry(newKey)

		retired = old.info()
		retired.State = StateRetired
		t := now
		retired.RetiredAt = &t
		if pub := entryPublicKey(dir, old, password); pub != nil {
			retired.PublicKey = pub
			retired.PublicKeyPEM, _ = encodePublicKeyPEM(pub)
		}
		return undo, nil
	})
	if err != nil {
		return KeyInfo{}, KeyInfo{}, err
	}
	return newKey, retired, nil
}

// MarkCompromised records that key kid was compromised at the given time:
// state compromised, compromised_at = at (truncated down to the second).
// From then on no signature claiming a time at or after at verifies, and
// the key never signs. Marking an already compromised key again only ever
// moves compromised_at earlier; a later time is ignored (nil error). A
// time in the future is refused: a compromise is something that happened.
// An authority whose active key is compromised has no signing key until
// Generate makes one.
func MarkCompromised(dir, kid string, at time.Time) error {
	if at.IsZero() {
		return licensehub.FieldError(licensehub.EINVALID, "at", "the compromise time is missing")
	}
	at = at.UTC().Truncate(time.Second)
	if at.After(time.Now().Add(time.Minute)) {
		return licensehub.FieldError(licensehub.EINVALID, "at", "compromise time %s is in the future", fmtTime(at))
	}
	return editKeyring(dir, false, func(d *keyringDoc, entries []*ringEntry) (func(), error) {
		i := slices.IndexFunc(entries, func(e *ringEntry) bool { return e.raw.KID == kid })
		if i < 0 {
			return nil, &licensehub.Error{
				Code:    licensehub.EKEYNOTFOUND,
				Field:   "kid",
				Message: fmt.Sprintf("no key with kid %q in %s", kid, d.path),
				Details: map[string]any{"kid": kid},
			}
		}
		e := entries[i]
		if e.compromisedAt != nil && !e.compromisedAt.After(at) {
			return nil, errNoChange
		}
		setScalar(e.node, "state", string(StateCompromised), "!!str")
		setScalar(e.node, "compromised_at", at.Format(time.RFC3339), "!!timestamp")
		return nil, nil
	})
}

// errNoChange tells editKeyring that there is nothing to write.
var errNoChange = errors.New("no change")

// checkNewKey checks the arguments of Generate and Rotate.
func checkNewKey(authority string, notBefore, notAfter time.Time) error {
	if err := ident.ValidateCreditCode(authority); err != nil {
		return &licensehub.Error{
			Code:    licensehub.EINVALID,
			Field:   "authority",
			Message: fmt.Sprintf("%q is not a valid unified social credit code: %s", authority, licensehub.Message(err)),
			Err:     err,
		}
	}
	if notBefore.IsZero() || notAfter.IsZero() {
		return licensehub.FieldError(licensehub.EINVALID, "not_after", "the key's validity times are missing")
	}
	if !notBefore.Before(notAfter) {
		return licensehub.FieldError(licensehub.EINVALID, "not_after", "not_after %s is not after not_before %s (times are whole seconds)",
			fmtTime(notAfter), fmtTime(notBefore))
	}
	return nil
}

// normTime is how the management functions store times: UTC, whole
// seconds (truncated: never later than asked).
func normTime(t time.Time) time.Time { return t.UTC().Truncate(time.Second) }

// activeEntry is the authority's active entry, or nil.
func activeEntry(entries []*ringEntry, authority string) *ringEntry {
	for _, e := range entries {
		if e.raw.Authority == authority && e.state == StateActive {
			return e
		}
	}
	return nil
}

// editKeyring is the read-modify-write of keyring.yaml under the lock
// file. edit changes d.root (and may write new key files, returning how
// to remove them if the edit is abandoned); the result is checked again
// and written atomically. The keyring must be free of licensehub.Problems before.
func editKeyring(dir string, create bool, edit func(d *keyringDoc, entries []*ringEntry) (undo func(), err error)) error {
	if !create {
		if _, err := os.Stat(filepath.Join(dir, KeyringFile)); errors.Is(err, fs.ErrNotExist) {
			return &licensehub.Error{
				Code:    licensehub.EKEYNOTFOUND,
				Message: fmt.Sprintf("no keyring at %s: create the first key with `hubctl keys gen`", filepath.Join(dir, KeyringFile)),
				Err:     err,
			}
		}
	}
	unlock, err := lockKeyring(dir)
	if err != nil {
		return err
	}
	defer unlock()
	d, err := readKeyringDoc(dir, create)
	if err != nil {
		return err
	}
	entries, ps := d.entries()
	if err := ps.Err("keyring " + d.path); err != nil {
		return &licensehub.Error{
			Code:    licensehub.EINVALID,
			Message: fmt.Sprintf("refusing to change keys until %s is fixed: %s", d.path, licensehub.Message(err)),
		}
	}
	undo, err := edit(d, entries)
	if errors.Is(err, errNoChange) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := d.write(); err != nil {
		if undo != nil {
			undo()
		}
		return err
	}
	return nil
}

// createKey makes a new SM2 key and writes <kid>.key.pem and
// <kid>.pub.pem into dir; undo removes them again.
func createKey(dir, authority string, notBefore, notAfter time.Time, password []byte) (KeyInfo, func(), error) {
	priv, err := sm2.GenerateKey(rand.Reader)
	if err != nil {
		return KeyInfo{}, nil, licensehub.Wrap(err, licensehub.EINTERNAL, "generate SM2 key")
	}
	pub := copyPublicKey(&priv.PublicKey)
	kid, err := KeyID(pub)
	if err != nil {
		return KeyInfo{}, nil, licensehub.Wrap(err, licensehub.EINTERNAL, "key ID of the new key")
	}
	var der []byte
	blockType := "PRIVATE KEY"
	if len(password) > 0 {
		der, err = pkcs8.MarshalPrivateKey(priv, password, keyEncrypter)
		blockType = "ENCRYPTED PRIVATE KEY"
	} else {
		der, err = pkcs8.MarshalPrivateKey(priv, nil, nil)
	}
	if err != nil {
		return KeyInfo{}, nil, licensehub.Wrap(err, licensehub.EINTERNAL, "encode the new private key")
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der})
	clear(der)
	defer clear(keyPEM)
	pubPEM, err := encodePublicKeyPEM(pub)
	if err != nil {
		return KeyInfo{}, nil, licensehub.Wrap(err, licensehub.EINTERNAL, "encode the new public key")
	}
	keyName, pubName := kid+".key.pem", kid+".pub.pem"
	if err := writeFileAtomic(dir, keyName, keyPEM, 0o600, false); err != nil {
		return KeyInfo{}, nil, err
	}
	if err := writeFileAtomic(dir, pubName, []byte(pubPEM), 0o644, false); err != nil {
		os.Remove(filepath.Join(dir, keyName))
		return KeyInfo{}, nil, err
	}
	undo := func() {
		os.Remove(filepath.Join(dir, keyName))
		os.Remove(filepath.Join(dir, pubName))
	}
	return KeyInfo{
		KeyID:        kid,
		Authority:    authority,
		Algorithm:    Algorithm,
		PublicKeyPEM: pubPEM,
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		State:        StateActive,
		PublicKey:    pub,
	}, undo, nil
}

// entryPublicKey finds an entry's public key without the keyring's
// passwords: public_key file, certificate, then the key file (trying
// password if it is encrypted). It returns nil when none works.
func entryPublicKey(dir string, e *ringEntry, password []byte) *ecdsa.PublicKey {
	if e.raw.PublicKey != "" {
		if data, err := os.ReadFile(filepath.Join(dir, e.raw.PublicKey)); err == nil {
			if pub, err := decodePublicKeyPEM(data); err == nil {
				return pub
			}
		}
	}
	if e.raw.Certificate != "" {
		if data, err := os.ReadFile(filepath.Join(dir, e.raw.Certificate)); err == nil {
			if certs, err := decodeCertificatesPEM(data); err == nil {
				if pub, ok := certs[0].PublicKey.(*ecdsa.PublicKey); ok && sm2.IsSM2PublicKey(pub) {
					return pub
				}
			}
		}
	}
	pw := func() ([]byte, error) { return password, nil }
	if priv, err := loadPrivateKey(filepath.Join(dir, e.raw.File), pw); err == nil {
		return copyPublicKey(&priv.PublicKey)
	}
	return nil
}

// appendEntry adds a new key (written by createKey) to keys:.
func (d *keyringDoc) appendEntry(info KeyInfo) {
	top := d.root.Content[0]
	seq := mappingValue(top, "keys")
	if seq == nil {
		top.Content = append(top.Content, scalarNode("keys", "!!str"), &yaml.Node{Kind: yaml.SequenceNode})
		seq = top.Content[len(top.Content)-1]
	} else if seq.Kind != yaml.SequenceNode { // "keys:" with no value
		*seq = yaml.Node{Kind: yaml.SequenceNode, HeadComment: seq.HeadComment, LineComment: seq.LineComment}
	}
	seq.Style = 0 // block style, even if it was "keys: []"
	m := &yaml.Node{Kind: yaml.MappingNode}
	setScalar(m, "kid", info.KeyID, "!!str")
	setScalar(m, "authority", info.Authority, "!!str")
	setScalar(m, "file", info.KeyID+".key.pem", "!!str")
	setScalar(m, "public_key", info.KeyID+".pub.pem", "!!str")
	setScalar(m, "not_before", info.NotBefore.Format(time.RFC3339), "!!timestamp")
	setScalar(m, "not_after", info.NotAfter.Format(time.RFC3339), "!!timestamp")
	setScalar(m, "state", string(info.State), "!!str")
	seq.Content = append(seq.Content, m)
}

// write checks the edited document as OpenKeyring would (without key
// files) and replaces keyring.yaml with it atomically, keeping the header
// comment.
func (d *keyringDoc) write() error {
	d.ensureHeader()
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(d.root); err != nil {
		return licensehub.Wrap(err, licensehub.EINTERNAL, "encode %s", d.path)
	}
	if err := enc.Close(); err != nil {
		return licensehub.Wrap(err, licensehub.EINTERNAL, "encode %s", d.path)
	}
	check := &keyringDoc{dir: d.dir, path: d.path}
	if err := check.parse(buf.Bytes()); err != nil {
		return licensehub.Errorf(licensehub.EINTERNAL, "the edited %s does not read back: %s", d.path, licensehub.Message(err))
	}
	if _, ps := check.entries(); len(ps) > 0 {
		return licensehub.Errorf(licensehub.EINTERNAL, "the edited %s is invalid; not written: %s", d.path, licensehub.Message(ps.Err("keyring "+d.path)))
	}
	mode := d.mode
	if mode == 0 {
		mode = 0o600
	}
	return writeFileAtomic(d.dir, KeyringFile, buf.Bytes(), mode, true)
}

// ensureHeader puts keyringHeader above the document unless it is there.
func (d *keyringDoc) ensureHeader() {
	top := d.root.Content[0]
	for _, c := range []string{d.root.HeadComment, top.HeadComment, firstKeyComment(top)} {
		if strings.Contains(c, headerMarker) {
			return
		}
	}
	if d.root.HeadComment == "" {
		d.root.HeadComment = keyringHeader
	} else {
		d.root.HeadComment = keyringHeader + "\n\n" + d.root.HeadComment
	}
}

func firstKeyComment(m *yaml.Node) string {
	if len(m.Content) == 0 {
		return ""
	}
	return m.Content[0].HeadComment
}

// mappingKey is the key node of key in mapping m, or nil.
func mappingKey(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i]
		}
	}
	return nil
}

// mappingValue is the value node of key in mapping m, or nil.
func mappingValue(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// setScalar sets key in mapping m to a scalar, keeping the comments of an
// existing value. The tag makes the encoder quote a value that would
// otherwise read back as another type (e.g. an all-digit kid).
func setScalar(m *yaml.Node, key, value, tag string) {
	if v := mappingValue(m, key); v != nil {
		v.Kind, v.Tag, v.Value, v.Style, v.Content = yaml.ScalarNode, tag, value, 0, nil
		return
	}
	m.Content = append(m.Content, scalarNode(key, "!!str"), scalarNode(value, tag))
}

func scalarNode(value, tag string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: value}
}

// ---------------------------------------------------------------------
// Files

// lockKeyring takes dir's lock file, created with O_EXCL, waiting up to
// lockWait for another holder; the returned function releases it. A lock
// file left by a crashed process must be removed by hand: its content
// says who made it and when.
func lockKeyring(dir string) (unlock func(), err error) {
	path := filepath.Join(dir, lockFile)
	deadline := time.Now().Add(lockWait)
	for {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			host, _ := os.Hostname()
			_, werr := fmt.Fprintf(f, "pid %d on %s since %s\n", os.Getpid(), host, time.Now().UTC().Format(time.RFC3339))
			cerr := f.Close()
			if werr != nil || cerr != nil {
				os.Remove(path)
				return nil, licensehub.Wrap(errors.Join(werr, cerr), licensehub.EUNAVAILABLE, "write lock file %s", path)
			}
			return func() { os.Remove(path) }, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, licensehub.Wrap(err, licensehub.EUNAVAILABLE, "create lock file %s", path)
		}
		if time.Now().After(deadline) {
			holder, _ := os.ReadFile(path)
			return nil, &licensehub.Error{
				Code: licensehub.ETIMEOUT,
				Message: fmt.Sprintf("keyring %s is locked by another hubctl (%s: %s); if none is running, remove the lock file",
					dir, path, strings.TrimSpace(string(holder))),
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// writeFileAtomic writes dir/name through a fsynced temp file in dir and a
// rename, then syncs dir: readers see the old or the new content, never a
// part. Unless replace, an existing file is an error.
func writeFileAtomic(dir, name string, data []byte, perm fs.FileMode, replace bool) (err error) {
	final := filepath.Join(dir, name)
	fsErr := func(err error) error {
		return licensehub.Wrap(err, licensehub.EUNAVAILABLE, "write %s", final)
	}
	f, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return fsErr(err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(perm); err != nil && runtime.GOOS != "windows" {
		return fsErr(err)
	}
	if _, err := f.Write(data); err != nil {
		return fsErr(err)
	}
	if err := f.Sync(); err != nil {
		return fsErr(err)
	}
	if err := f.Close(); err != nil {
		return fsErr(err)
	}
	if !replace {
		if _, err := os.Lstat(final); err == nil {
			return &licensehub.Error{Code: licensehub.ECONFLICT, Message: fmt.Sprintf("%s already exists; not overwritten", final)}
		}
	}
	if err := os.Rename(tmp, final); err != nil {
		return fsErr(err)
	}
	if err := syncDir(dir); err != nil {
		return fsErr(err)
	}
	return nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
