package lookup

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"io"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/ident"
)

// ConsentsConfig configures Consents. Objects and KV are required.
type ConsentsConfig struct {
	Objects licensehub.ObjectStore // system of record: consents/<id>.json, consents/<id>.revoked
	KV      licensehub.KV          // cache and each consent's state (active or revoked)
	// Matters, when set, refuses consents for unknown matters.
	Matters *Matters
	Clock   func() time.Time // nil: time.Now
	// MaxDuration bounds Until-From; 0: one year.
	MaxDuration time.Duration
	OpTimeout   time.Duration // per store call; 0: 5s
}

// Consents keeps the applicants' authorisations (授权). Safe for
// concurrent use and across hub instances sharing the stores.
type Consents struct {
	cfg  ConsentsConfig
	seen *lru.Cache[string, *Consent] // consents as stored (immutable; revocation is kept apart)
}

// ConsentRequest is what a citizen-facing app records for a holder.
type ConsentRequest struct {
	HolderCode     string
	HolderCodeType string // ident.HolderResidentID (111) or ident.HolderCreditCode (001)
	Matter         string // the service matter the consent is for
	App            string // optional: only this approval app may use it
	From, Until    time.Time
	CreatedBy      string // the citizen-facing app recording it
}

// Consent is a stored consent. The token is never stored: only TokenSM3.
type Consent struct {
	ID             string    `json:"id"`
	TokenSM3       string    `json:"token_sm3"` // hex SM3 of the token
	HolderCode     string    `json:"holder_code"`
	HolderCodeType string    `json:"holder_code_type"`
	Matter         string    `json:"matter"`
	App            string    `json:"app,omitempty"`
	From           time.Time `json:"from"`
	Until          time.Time `json:"until"`
	CreatedAt      time.Time `json:"created_at"`
	CreatedBy      string    `json:"created_by,omitempty"`

	// Token is set only in Create's answer: the opaque bearer token to
	// hand to the applicant's approval app. Never stored.
	Token string `json:"-"`
	// Revoked is set by Get when the consent has been revoked.
	Revoked *Revocation `json:"-"`
}

// Revocation is the create-only marker consents/<id>.revoked.
type Revocation struct {
	ID        string    `json:"id"`
	Holder    string    `json:"holder_code"`
	RevokedAt time.Time `json:"revoked_at"`
}

// NewConsents checks cfg.
func NewConsents(cfg ConsentsConfig) (*Consents, error) {
	if cfg.Objects == nil || cfg.KV == nil {
		return nil, licensehub.Errorf(licensehub.EINVALID, "lookup: consents need an object store and a KV")
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.MaxDuration <= 0 {
		cfg.MaxDuration = 366 * 24 * time.Hour
	}
	if cfg.OpTimeout <= 0 {
		cfg.OpTimeout = 5 * time.Second
	}
	seen, err := lru.New[string, *Consent](4096)
	if err != nil {
		return nil, licensehub.Wrap(err, licensehub.EINTERNAL, "lookup: consent cache")
	}
	return &Consents{cfg: cfg, seen: seen}, nil
}

func consentKey(id string) string { return "consents/" + id + ".json" }
func revokedKey(id string) string { return "consents/" + id + ".revoked" }
func kvConsent(id string) string  { return "lookup:consent:" + id }
func kvState(id string) string    { return "lookup:consent-state:" + id }

// The KV's consent state: whether the object store holds a revocation.
const (
	stateActive  = "active"
	stateRevoked = "revoked"
)

func validConsentID(id string) bool {
	_, err := hex.DecodeString(id)
	return err == nil && len(id) == 32
}

// Create records a consent and returns it with its token (the only time
// the token is available).
func (c *Consents) Create(ctx context.Context, req ConsentRequest) (*Consent, error) {
	if err := ident.ValidateHolderCode(req.HolderCodeType, req.HolderCode); err != nil {
		return nil, ident.WithField(err, "holder_code")
	}
	if req.Matter == "" {
		return nil, licensehub.FieldError(licensehub.EINVALID, "matter", "required")
	}
	if c.cfg.Matters != nil {
		if _, ok := c.cfg.Matters.Matter(req.Matter); !ok {
			return nil, licensehub.FieldError(licensehub.EINVALID, "matter", "no service matter %q", clip(req.Matter))
		}
	}
	if len(req.App) > 64 {
		return nil, licensehub.FieldError(licensehub.EINVALID, "app", "at most 64 characters")
	}
	now := c.cfg.Clock().UTC().Truncate(time.Second)
	from, until := req.From.UTC().Truncate(time.Second), req.Until.UTC().Truncate(time.Second)
	if req.From.IsZero() {
		from = now
	}
	switch {
	case req.Until.IsZero():
		return nil, licensehub.FieldError(licensehub.EINVALID, "until", "required")
	case !until.After(from):
		return nil, licensehub.FieldError(licensehub.EINVALID, "until", "must be after from")
	case !until.After(now):
		return nil, licensehub.FieldError(licensehub.EINVALID, "until", "is already past")
	case until.Sub(from) > c.cfg.MaxDuration:
		return nil, licensehub.FieldError(licensehub.EINVALID, "until", "a consent lasts at most %s", licensehub.HumanDuration(c.cfg.MaxDuration))
	}
	token := randomToken()
	d := digest(token)
	con := &Consent{ID: hex.EncodeToString(d[:16]), TokenSM3: hex.EncodeToString(d[:]),
		HolderCode: req.HolderCode, HolderCodeType: req.HolderCodeType, Matter: req.Matter, App: req.App,
		From: from, Until: until, CreatedAt: now, CreatedBy: req.CreatedBy}
	raw, err := json.Marshal(con)
	if err != nil {
		return nil, licensehub.Wrap(err, licensehub.EINTERNAL, "encoding a consent")
	}
	octx, cancel := context.WithTimeout(ctx, c.cfg.OpTimeout)
	_, err = c.cfg.Objects.Create(octx, consentKey(con.ID), bytes.NewReader(raw), int64(len(raw)),
		licensehub.PutOptions{ContentType: "application/json"})
	cancel()
	if err != nil {
		return nil, objectErr(err, "storing the consent")
	}
	c.cacheConsent(ctx, con.ID, raw, until.Sub(now))
	con.Token = token
	return con, nil
}

func (c *Consents) cacheConsent(ctx context.Context, id string, raw []byte, ttl time.Duration) {
	if ttl <= 0 {
		return
	}
	kctx, cancel := context.WithTimeout(ctx, c.cfg.OpTimeout)
	defer cancel()
	_ = c.cfg.KV.Set(kctx, kvConsent(id), raw, ttl+time.Hour)
}

// load reads a consent (KV first, then the object store); ENOTFOUND when
// there is none.
func (c *Consents) load(ctx context.Context, id string) (*Consent, error) {
	if con, ok := c.seen.Get(id); ok {
		cp := *con
		return &cp, nil
	}
	con, err := c.read(ctx, id)
	if err != nil {
		return nil, err
	}
	c.seen.Add(id, con)
	cp := *con
	return &cp, nil
}

// read reads a consent from the KV, or from the object store on a miss.
func (c *Consents) read(ctx context.Context, id string) (*Consent, error) {
	kctx, cancel := context.WithTimeout(ctx, c.cfg.OpTimeout)
	raw, err := c.cfg.KV.Get(kctx, kvConsent(id))
	cancel()
	if err != nil {
		octx, cancel := context.WithTimeout(ctx, c.cfg.OpTimeout)
		defer cancel()
		r, _, gerr := c.cfg.Objects.Get(octx, consentKey(id))
		if licensehub.IsCode(gerr, licensehub.ENOTFOUND) {
			return nil, licensehub.Errorf(licensehub.ENOTFOUND, "no consent %s", id)
		}
		if gerr != nil {
			return nil, objectErr(gerr, "reading the consent")
		}
		raw, err = io.ReadAll(io.LimitReader(r, 1<<16))
		r.Close()
		if err != nil {
			return nil, objectErr(err, "reading the consent")
		}
		var con Consent
		if err := json.Unmarshal(raw, &con); err != nil {
			return nil, licensehub.Wrap(err, licensehub.EINTERNAL, "stored consent %s is unreadable", id)
		}
		c.cacheConsent(ctx, id, raw, con.Until.Sub(c.cfg.Clock()))
		return &con, nil
	}
	var con Consent
	if err := json.Unmarshal(raw, &con); err != nil {
		return nil, licensehub.Wrap(err, licensehub.EINTERNAL, "cached consent %s is unreadable", id)
	}
	return &con, nil
}

// revoked reports whether con is revoked. The KV's state key answers
// (one GET); on a miss, or a KV failure, the object store's marker
// decides and the answer is put back: "revoked" overwrites, "active" only
// fills an absent key (SetNX), so a Revoke that raced this read is never
// undone. An object store that cannot answer is an error, never a pass.
func (c *Consents) revoked(ctx context.Context, con *Consent) (bool, error) {
	kctx, cancel := context.WithTimeout(ctx, c.cfg.OpTimeout)
	v, kerr := c.cfg.KV.Get(kctx, kvState(con.ID))
	cancel()
	if kerr == nil {
		return string(v) == stateRevoked, nil
	}
	octx, cancel := context.WithTimeout(ctx, c.cfg.OpTimeout)
	defer cancel()
	_, herr := c.cfg.Objects.Head(octx, revokedKey(con.ID))
	switch {
	case herr == nil:
		_ = c.setState(ctx, con, stateRevoked)
		return true, nil
	case licensehub.IsCode(herr, licensehub.ENOTFOUND):
		if licensehub.IsCode(kerr, licensehub.ENOTFOUND) {
			_ = c.setState(ctx, con, stateActive)
		}
		return false, nil
	}
	return false, objectErr(herr, "checking the consent's revocation")
}

// setState records con's state in the KV until an hour after the consent
// ends: "revoked" unconditionally, "active" only where no state is.
func (c *Consents) setState(ctx context.Context, con *Consent, state string) error {
	ttl := con.Until.Sub(c.cfg.Clock()) + time.Hour
	kctx, cancel := context.WithTimeout(ctx, c.cfg.OpTimeout)
	defer cancel()
	if state == stateActive {
		_, err := c.cfg.KV.SetNX(kctx, kvState(con.ID), []byte(state), max(ttl, time.Minute))
		return err
	}
	return c.cfg.KV.Set(kctx, kvState(con.ID), []byte(state), max(ttl, time.Minute))
}

// Get returns the consent with id for its holder (Revoked set when
// revoked); ENOTFOUND for an unknown id or another holder's consent.
func (c *Consents) Get(ctx context.Context, id, holder string) (*Consent, error) {
	if !validConsentID(id) {
		return nil, licensehub.Errorf(licensehub.ENOTFOUND, "no consent %s", clip(id))
	}
	con, err := c.load(ctx, id)
	if err != nil {
		return nil, err
	}
	if con.HolderCode != holder {
		return nil, licensehub.Errorf(licensehub.ENOTFOUND, "no consent %s", id)
	}
	rev, err := c.revoked(ctx, con)
	if err != nil {
		return nil, err
	}
	if rev {
		con.Revoked = &Revocation{ID: id, Holder: holder}
	}
	return con, nil
}

// Revoke withdraws consent id of holder with immediate effect: when it
// returns nil, every Check on every instance sharing the stores refuses
// the consent (consent_revoked). It writes the create-only object marker
// (the system of record) and then the KV state every Check reads; if that
// write fails the revocation is recorded but not yet effective
// everywhere, and Revoke says so (EOUTCOMEUNKNOWN, 503: retry). Revoking twice is
// not an error. An unknown id or another holder's consent is ENOTFOUND.
func (c *Consents) Revoke(ctx context.Context, id, holder string) error {
	if !validConsentID(id) {
		return licensehub.Errorf(licensehub.ENOTFOUND, "no consent %s", clip(id))
	}
	con, err := c.load(ctx, id)
	if err != nil {
		return err
	}
	if con.HolderCode != holder {
		return licensehub.Errorf(licensehub.ENOTFOUND, "no consent %s", id)
	}
	rev := Revocation{ID: id, Holder: holder, RevokedAt: c.cfg.Clock().UTC().Truncate(time.Second)}
	raw, _ := json.Marshal(rev)
	octx, cancel := context.WithTimeout(ctx, c.cfg.OpTimeout)
	_, err = c.cfg.Objects.Create(octx, revokedKey(id), bytes.NewReader(raw), int64(len(raw)),
		licensehub.PutOptions{ContentType: "application/json"})
	cancel()
	if err != nil && !licensehub.IsCode(err, licensehub.ECONFLICT) {
		return objectErr(err, "recording the revocation")
	}
	if err := c.setState(ctx, con, stateRevoked); err != nil {
		return licensehub.Wrap(err, licensehub.EOUTCOMEUNKNOWN, "the revocation of consent %s is recorded but may not yet be effective everywhere; retry the same request", id)
	}
	return nil
}

// Check returns the consent of token if it authorises holder's data for
// matter by app at now, or an EFORBIDDEN error whose Details["reason"] is
// consent_missing, consent_revoked, consent_other_holder,
// consent_other_matter, consent_other_app, consent_not_yet_valid or
// consent_expired. A store that cannot answer is an error of its own
// (never a pass).
func (c *Consents) Check(ctx context.Context, token, holder, matter, app string, now time.Time) (*Consent, error) {
	if !validSecret(token) {
		return nil, forbidden(ReasonConsentMissing, "no consent with this token")
	}
	d := digest(token)
	id := hex.EncodeToString(d[:16])
	con, err := c.load(ctx, id)
	if licensehub.IsCode(err, licensehub.ENOTFOUND) {
		return nil, forbidden(ReasonConsentMissing, "no consent with this token")
	}
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare([]byte(con.TokenSM3), []byte(hex.EncodeToString(d[:]))) != 1 {
		return nil, forbidden(ReasonConsentMissing, "no consent with this token")
	}
	rev, err := c.revoked(ctx, con)
	if err != nil {
		return nil, err
	}
	switch {
	case rev:
		return nil, forbidden(ReasonConsentRevoked, "consent %s was revoked by its holder", id)
	case con.HolderCode != holder:
		return nil, forbidden(ReasonConsentOtherHolder, "consent %s was given by another holder", id)
	case con.Matter != matter:
		return nil, forbidden(ReasonConsentOtherMatter, "consent %s is for service matter %s, not %s", id, con.Matter, clip(matter))
	case con.App != "" && con.App != app:
		return nil, forbidden(ReasonConsentOtherApp, "consent %s is for another approval system", id)
	case now.Before(con.From):
		return nil, forbidden(ReasonConsentNotYetValid, "consent %s is valid from %s", id, con.From.Format(time.RFC3339))
	case !now.Before(con.Until):
		return nil, forbidden(ReasonConsentExpired, "consent %s expired at %s", id, con.Until.Format(time.RFC3339))
	}
	return con, nil
}

// objectErr maps an object store failure: codes the store gave are kept
// except ENOTFOUND/ECONFLICT surprises; anything else is EOBJECTSTORE.
func objectErr(err error, what string) error {
	switch licensehub.ErrorCode(err) {
	case licensehub.EOBJECTSTORE, licensehub.ETIMEOUT, licensehub.EINVALID:
		return err
	}
	return licensehub.Wrap(err, licensehub.EOBJECTSTORE, "%s failed", what)
}

// clip shortens a value echoed in a message (licensehub.Clip).
func clip(s string) string { return licensehub.Clip(s, 64) }
