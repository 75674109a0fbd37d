package lookup

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/adapters"
	"github.com/licensehub/licensehub/auth"
	"github.com/licensehub/licensehub/license"
)

// Library is what the lookup needs of the license library;
// *license.Library implements it.
type Library interface {
	Get(ctx context.Context, identifier string) (*license.Record, error)
	ByHolder(ctx context.Context, holderCode string) ([]license.Summary, error)
	Status(ctx context.Context, identifier string) (license.Status, error)
}

// Gateway derives signed certificates; *adapters.Gateway implements it.
type Gateway interface {
	Certify(ctx context.Context, kind string, params map[string]string) (*adapters.Issued, error)
}

// Config configures a Service. Library, Matters, Consents and KV are
// required; Gateway is needed for matters with certificates.
type Config struct {
	Library  Library
	Gateway  Gateway
	Matters  *Matters
	Consents *Consents
	KV       licensehub.KV    // use records under their access codes
	Clock    func() time.Time // nil: time.Now
	// AccessCodeTTL is how long an access code reads its use record; 0: 10 minutes.
	AccessCodeTTL time.Duration
	// UseTTL is how long the annotated copy (加注件) is valid for the
	// matter (its "valid until"); 0: 24 hours. Never shorter than
	// AccessCodeTTL.
	UseTTL time.Duration
	// DocumentCacheSize is how many parsed license documents (immutable:
	// a new version has its own identifier) each instance keeps in
	// memory; 0: 4096. Statuses are never cached.
	DocumentCacheSize int
	OpTimeout         time.Duration // per store call; 0: 5s
	Workers           int           // parallel reads and writes per lookup; 0: 8
}

// Service answers approval systems' lookups. Safe for concurrent use and
// for several hub instances sharing the stores.
type Service struct {
	cfg  Config
	docs *lru.Cache[string, *license.Record] // identifier → the record as first read (its status stale)
}

// NewService checks cfg and fills defaults.
func NewService(cfg Config) (*Service, error) {
	switch {
	case cfg.Library == nil:
		return nil, licensehub.FieldError(licensehub.EINVALID, "Library", "lookup: no license library")
	case cfg.Matters == nil:
		return nil, licensehub.FieldError(licensehub.EINVALID, "Matters", "lookup: no service matters")
	case cfg.Consents == nil:
		return nil, licensehub.FieldError(licensehub.EINVALID, "Consents", "lookup: no consents")
	case cfg.KV == nil:
		return nil, licensehub.FieldError(licensehub.EINVALID, "KV", "lookup: needs a KV")
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.AccessCodeTTL <= 0 {
		cfg.AccessCodeTTL = 10 * time.Minute
	}
	if cfg.UseTTL <= 0 {
		cfg.UseTTL = 24 * time.Hour
	}
	cfg.UseTTL = max(cfg.UseTTL, cfg.AccessCodeTTL)
	if cfg.DocumentCacheSize <= 0 {
		cfg.DocumentCacheSize = 4096
	}
	if cfg.OpTimeout <= 0 {
		cfg.OpTimeout = 5 * time.Second
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 8
	}
	docs, err := lru.New[string, *license.Record](cfg.DocumentCacheSize)
	if err != nil {
		return nil, licensehub.Wrap(err, licensehub.EINVALID, "lookup: document cache")
	}
	return &Service{cfg: cfg, docs: docs}, nil
}

// Matters returns the service matters the service was built with.
func (s *Service) Matters() *Matters { return s.cfg.Matters }

// Caller is the approval system making the lookup. Authorize is the
// member's grant check ((*auth.Member).Authorize): it is asked with
// op auth.OpLicenseLookup and the matter alone, then with each license's
// type and issuing authority.
type Caller struct {
	App       string
	Authorize func(op string, res auth.Resource) error
}

// Filters narrow ByHolder.
type Filters struct {
	Type   string // a license type code; "" any the matter needs
	Status string // a status code ("01") or name ("valid"); "" any
}

// View is a license minimised for one matter: its metadata, its current
// status and only the face fields the matter may see (the others are
// absent). It is not signed; the signed original is in the use record,
// read with Use.AccessCode.
type View struct {
	Identifier   string         `json:"identifier"`
	Name         string         `json:"name"`
	TypeCode     string         `json:"type_code"`
	TypeName     string         `json:"type_name"`
	Number       string         `json:"number"`
	Version      string         `json:"version"`
	Issuer       license.Party  `json:"issuer"`
	Holder       license.Holder `json:"holder"`
	IssueDate    string         `json:"issue_date"`
	ValidFrom    string         `json:"valid_from"`
	ValidUntil   string         `json:"valid_until"`
	Status       license.Status `json:"status"`      // current, from the library at lookup time
	StatusName   string         `json:"status_name"` // valid, suspended, ..., superseded
	SupersededBy string         `json:"superseded_by,omitempty"`
	// Provenance says where a license no department pushed came from: a
	// converted paper license (stock_conversion) or one issued elsewhere
	// in the province (province).
	Provenance *license.Provenance `json:"provenance,omitempty"`
	Fields     map[string]any      `json:"fields"` // only the matter's fields
	Use        *UseRef             `json:"use,omitempty"`
}

// CertificateView is a certificate minimised for one matter.
type CertificateView struct {
	Kind       string           `json:"kind"`
	Title      string           `json:"title"`
	Number     string           `json:"number"`
	Issuer     adapters.Party   `json:"issuer"`
	Source     adapters.Source  `json:"source"`
	Subject    adapters.Subject `json:"subject"`
	FetchedAt  string           `json:"fetched_at"`
	ValidUntil string           `json:"valid_until"`
	Data       map[string]any   `json:"data"` // only the matter's fields
	Use        *UseRef          `json:"use,omitempty"`
}

// UseRef points at the use record made for one returned material.
type UseRef struct {
	ID                  string    `json:"id"`
	AccessCode          string    `json:"access_code"`
	AccessCodeExpiresAt time.Time `json:"access_code_expires_at"`
	ExpiresAt           time.Time `json:"expires_at"` // the annotated copy's validity
	// Of is the license identifier or certificate number handed out (for
	// the audit record; the view names it already).
	Of string `json:"-"`
}

// Result is the answer of ByHolder and Get.
type Result struct {
	Matter    string `json:"matter"`
	ConsentID string `json:"consent_id,omitempty"` // the consent used, if any
	Licenses  []View `json:"licenses"`
}

// authorize runs the checks every lookup starts with and returns the
// matter and the consent ID (if a consent is used). The consent is checked
// against holder; holder "" defers that check (Get, before it knows the
// license's holder).
func (s *Service) authorize(ctx context.Context, caller Caller, matterCode, holder string, authz Authorization, now time.Time) (*Matter, string, error) {
	m, ok := s.cfg.Matters.Matter(matterCode)
	if !ok {
		if matterCode == "" {
			return nil, "", licensehub.FieldError(licensehub.EINVALID, "matter", "a lookup names its service matter")
		}
		return nil, "", licensehub.FieldError(licensehub.ENOTFOUND, "matter", "no service matter %q", clip(matterCode))
	}
	if caller.Authorize == nil {
		return nil, "", licensehub.Errorf(licensehub.EINTERNAL, "lookup: the caller has no grant check")
	}
	if err := caller.Authorize(auth.OpLicenseLookup, auth.Resource{Matter: m.Code}); err != nil {
		return nil, "", err
	}
	if err := authz.Validate(); err != nil {
		return nil, "", err
	}
	if authz.ConsentToken == "" || holder == "" {
		return m, "", nil
	}
	con, err := s.cfg.Consents.Check(ctx, authz.ConsentToken, holder, m.Code, caller.App, now)
	if err != nil {
		return nil, "", err
	}
	return m, con.ID, nil
}

// isForbidden reports a 403-family error (the caller lacks a grant).
func isForbidden(err error) bool {
	return strings.HasPrefix(licensehub.ErrorCode(err), licensehub.EFORBIDDEN)
}

// permitted asks the caller's grants for one license.
func permitted(caller Caller, m *Matter, typeCode, authority string) (bool, error) {
	err := caller.Authorize(auth.OpLicenseLookup, auth.Resource{LicenseType: typeCode, Authority: authority, Matter: m.Code})
	switch {
	case err == nil:
		return true, nil
	case isForbidden(err):
		return false, nil
	}
	return false, err
}

// parseStatusFilter accepts a status code or name.
func parseStatusFilter(f string) (license.Status, error) {
	if f == "" {
		return "", nil
	}
	for _, st := range []license.Status{license.StatusValid, license.StatusSuspended, license.StatusWithdrawn,
		license.StatusCancelled, license.StatusExpired, license.StatusTransferred, license.StatusRevoked, license.StatusOther} {
		if f == string(st) || f == st.Name() {
			return st, nil
		}
	}
	if f == license.SupersededDescription {
		return license.StatusOther, nil
	}
	return "", licensehub.FieldError(licensehub.EINVALID, "status", "status %q is not a status code (01..07, 99) or name", clip(f))
}

// ByHolder lists holder's licenses of the types the matter needs and the
// caller is granted (others are left out silently), each minimised to the
// matter's fields, with its current status and a use record. The caller
// must be granted the matter (its 403 otherwise); authz must be valid and
// a consent must be the holder's, for this matter and app, unrevoked and
// in its window (EFORBIDDEN with a reason otherwise).
func (s *Service) ByHolder(ctx context.Context, caller Caller, matter, holder string, authz Authorization, f Filters) (*Result, error) {
	now := s.cfg.Clock()
	if holder == "" {
		return nil, licensehub.FieldError(licensehub.EINVALID, "holder_code", "required")
	}
	m, consentID, err := s.authorize(ctx, caller, matter, holder, authz, now)
	if err != nil {
		return nil, err
	}
	wantStatus, err := parseStatusFilter(f.Status)
	if err != nil {
		return nil, err
	}
	types := m.LicenseTypes()
	if f.Type != "" && !slices.Contains(types, f.Type) {
		return nil, forbidden(ReasonNotInMatter, "service matter %s does not need license type %s", m.Code, clip(f.Type))
	}
	sums, err := s.cfg.Library.ByHolder(ctx, holder)
	if err != nil {
		return nil, err
	}
	var picked []license.Summary
	for _, sum := range sums {
		if !slices.Contains(types, sum.TypeCode) || (f.Type != "" && sum.TypeCode != f.Type) {
			continue
		}
		ok, err := permitted(caller, m, sum.TypeCode, sum.Authority)
		if err != nil {
			return nil, err
		}
		if ok {
			picked = append(picked, sum)
		}
	}
	views := make([]*View, len(picked))
	err = s.parallel(ctx, len(picked), func(ctx context.Context, i int) error {
		rec, st, err := s.withStatus(ctx, picked[i].Identifier, picked[i].Status)
		if err != nil {
			return err
		}
		if wantStatus != "" && st != wantStatus {
			return nil
		}
		mat, _ := m.materialFor(rec.License.TypeCode)
		v := licenseView(rec, st, mat.Fields)
		v.Use, err = s.recordUse(ctx, useFor(m, mat, caller, authz, consentID, now), rec.Identifier, "", rec.Document)
		if err != nil {
			return err
		}
		views[i] = v
		return nil
	})
	if err != nil {
		return nil, err
	}
	res := &Result{Matter: m.Code, ConsentID: consentID, Licenses: []View{}}
	for _, v := range views {
		if v != nil {
			res.Licenses = append(res.Licenses, *v)
		}
	}
	return res, nil
}

// Get reads one license for a matter: its type must be one the matter
// needs (EFORBIDDEN license_type_not_in_matter), the caller granted its
// type and authority (the grant's 403), a consent the license holder's.
// The answer is minimised like ByHolder's, with a use record.
func (s *Service) Get(ctx context.Context, caller Caller, matter, identifier string, authz Authorization) (*Result, error) {
	now := s.cfg.Clock()
	m, _, err := s.authorize(ctx, caller, matter, "", authz, now)
	if err != nil {
		return nil, err
	}
	rec, st, err := s.current(ctx, identifier)
	if err != nil {
		return nil, err
	}
	lic := rec.License
	mat, ok := m.materialFor(lic.TypeCode)
	if !ok {
		return nil, forbidden(ReasonNotInMatter, "service matter %s does not need license type %s", m.Code, lic.TypeCode)
	}
	if err := caller.Authorize(auth.OpLicenseLookup, auth.Resource{LicenseType: lic.TypeCode, Authority: lic.Issuer.Code, Matter: m.Code}); err != nil {
		return nil, err
	}
	consentID := ""
	if authz.ConsentToken != "" {
		con, err := s.cfg.Consents.Check(ctx, authz.ConsentToken, lic.Holder.Code, m.Code, caller.App, now)
		if err != nil {
			return nil, err
		}
		consentID = con.ID
	}
	v := licenseView(rec, st, mat.Fields)
	v.Use, err = s.recordUse(ctx, useFor(m, mat, caller, authz, consentID, now), rec.Identifier, "", rec.Document)
	if err != nil {
		return nil, err
	}
	return &Result{Matter: m.Code, ConsentID: consentID, Licenses: []View{*v}}, nil
}

// current reads a license, its immutable document from the instance's
// cache when warm, and its current status from the library (never
// cached). The record returned is the caller's to change.
func (s *Service) current(ctx context.Context, id string) (*license.Record, license.Status, error) {
	if _, ok := s.docs.Peek(id); !ok {
		return s.read(ctx, id)
	}
	st, err := s.cfg.Library.Status(ctx, id)
	if err != nil {
		return nil, "", err
	}
	return s.withStatus(ctx, id, st)
}

// withStatus is current for a license whose current status the library
// has just given.
func (s *Service) withStatus(ctx context.Context, id string, st license.Status) (*license.Record, license.Status, error) {
	cached, ok := s.docs.Get(id)
	if !ok || st == license.StatusUnknown || st == license.StatusOther {
		// Not cached; or gone, superseded or other, which the library's
		// record says.
		return s.read(ctx, id)
	}
	rec := *cached
	rec.Status, rec.StatusName, rec.SupersededBy = st, st.Name(), ""
	return &rec, st, nil
}

// read reads a license from the library and caches its document.
func (s *Service) read(ctx context.Context, id string) (*license.Record, license.Status, error) {
	rec, err := s.cfg.Library.Get(ctx, id)
	if err != nil {
		return nil, "", err
	}
	s.docs.Add(id, rec)
	// Get read the status from the object store: current as of now.
	cp := *rec
	return &cp, rec.Status, nil
}

// licenseView minimises rec to fields.
func licenseView(rec *license.Record, st license.Status, fields []string) *View {
	lic := rec.License
	name := st.Name()
	if rec.SupersededBy != "" {
		name = license.SupersededDescription
	}
	return &View{Identifier: rec.Identifier, Name: lic.Name, TypeCode: lic.TypeCode, TypeName: lic.TypeName,
		Number: lic.Number, Version: lic.Version, Issuer: lic.Issuer, Holder: lic.Holder,
		IssueDate: lic.IssueDate, ValidFrom: lic.ValidFrom, ValidUntil: lic.ValidUntil,
		Status: st, StatusName: name, SupersededBy: rec.SupersededBy, Provenance: provenanceOf(rec),
		Fields: minimise(lic.Fields, fields)}
}

// provenanceOf is a foreign license's provenance (kept beside its
// document) or the one inside a converted license's signed body.
func provenanceOf(rec *license.Record) *license.Provenance {
	if rec.Provenance != nil {
		return rec.Provenance
	}
	return rec.License.Provenance
}

// minimise keeps only the allowed fields of data (absent, not blank, when
// not allowed or not present).
func minimise(data map[string]any, allowed []string) map[string]any {
	out := map[string]any{}
	for _, f := range allowed {
		if v, ok := data[f]; ok {
			out[f] = v
		}
	}
	return out
}

// parallel runs fn(i) for i in [0,n) on at most Workers goroutines; the
// first error cancels the others' context and is returned after all end.
func (s *Service) parallel(ctx context.Context, n int, fn func(ctx context.Context, i int) error) error {
	if n == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	sem := make(chan struct{}, s.cfg.Workers)
	for i := 0; i < n; i++ {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			if first != nil {
				return first
			}
			return licensehub.Wrap(ctx.Err(), licensehub.ETIMEOUT, "lookup interrupted")
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := fn(ctx, i); err != nil {
				once.Do(func() { first = err; cancel() })
			}
		}()
	}
	wg.Wait()
	return first
}
