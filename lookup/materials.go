package lookup

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/auth"
	"github.com/licensehub/licensehub/license"
)

// Material states.
const (
	StateFound               = "found"
	StateNotFound            = "not_found"
	StateExpired             = "expired"   // status 05, or past its validity period
	StateRevoked             = "revoked"   // 07 revoked, 03 withdrawn, 04 cancelled (Detail names which)
	StateSuspended           = "suspended" // 02
	StateNotPermitted        = "not_permitted"
	StateUpstreamUnavailable = "upstream_unavailable"
	StateNeedsInput          = "needs_input" // a certificate parameter the request did not give (or gave wrong)
	StateMismatch            = "mismatch"    // a verifying certificate (identity): the record does not match what was given
)

// MaterialsRequest is a materials assembly for one applicant.
type MaterialsRequest struct {
	Matter     string
	HolderCode string
	HolderName string
	// Inputs are the values of "input:NAME" certificate parameters, e.g.
	// the legal representative's ID number.
	Inputs map[string]string
}

// MaterialEntry is one material of the matter and what the hub found.
type MaterialEntry struct {
	Name              string           `json:"name"`
	Kind              string           `json:"kind"` // "license" or "certificate"
	LicenseType       string           `json:"license_type,omitempty"`
	Certificate       string           `json:"certificate,omitempty"`
	Optional          bool             `json:"optional,omitempty"`
	State             string           `json:"state"`
	Detail            string           `json:"detail,omitempty"`
	RetryAfterSeconds int              `json:"retry_after_seconds,omitempty"` // upstream_unavailable
	License           *View            `json:"license,omitempty"`             // found (and suspended/expired/revoked: the view without a use)
	CertificateView   *CertificateView `json:"certificate_view,omitempty"`    // found
}

// MaterialsResult answers Materials: one entry per material, in the
// matter's order, and the names of the materials the applicant still has
// to provide (every non-optional one not found).
type MaterialsResult struct {
	Matter     string          `json:"matter"`
	MatterName string          `json:"matter_name"`
	ConsentID  string          `json:"consent_id,omitempty"`
	Materials  []MaterialEntry `json:"materials"`
	Missing    []string        `json:"missing"`
}

// Materials gathers every material the matter requires for the holder, at
// once: license materials from the library, certificates from the
// gateway, all in parallel and bounded by ctx. Each found material gets a
// use record. An adapter that fails makes its own material
// upstream_unavailable; the others are still returned. The caller's matter
// grant and the authorisation are checked first (as for ByHolder); a
// library or object store failure fails the whole request.
func (s *Service) Materials(ctx context.Context, caller Caller, matter, holderCode, holderName string, authz Authorization) (*MaterialsResult, error) {
	return s.MaterialsFor(ctx, caller, MaterialsRequest{Matter: matter, HolderCode: holderCode, HolderName: holderName}, authz)
}

// MaterialsFor is Materials with inputs for certificate parameters.
func (s *Service) MaterialsFor(ctx context.Context, caller Caller, req MaterialsRequest, authz Authorization) (*MaterialsResult, error) {
	now := s.cfg.Clock()
	if req.HolderCode == "" {
		return nil, licensehub.FieldError(licensehub.EINVALID, "holder_code", "required")
	}
	m, consentID, err := s.authorize(ctx, caller, req.Matter, req.HolderCode, authz, now)
	if err != nil {
		return nil, err
	}
	// The holder's licenses, once, only if a license material needs them.
	var (
		sumsOnce sync.Once
		sums     []license.Summary
		sumsErr  error
	)
	holderLicenses := func(ctx context.Context) ([]license.Summary, error) {
		sumsOnce.Do(func() { sums, sumsErr = s.cfg.Library.ByHolder(ctx, req.HolderCode) })
		return sums, sumsErr
	}
	entries := make([]MaterialEntry, len(m.Materials))
	var (
		errOnce  sync.Once
		firstErr error
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for i, mat := range m.Materials {
		wg.Add(1)
		go func() {
			defer wg.Done()
			base := useFor(m, mat, caller, authz, consentID, now)
			var e MaterialEntry
			var err error
			if mat.IsLicense() {
				e, err = s.licenseMaterial(ctx, caller, m, mat, holderLicenses, base, now)
			} else {
				e, err = s.certificateMaterial(ctx, mat, req, base)
			}
			e.Name, e.Optional = mat.Name, mat.Optional
			entries[i] = e
			if err != nil {
				errOnce.Do(func() { firstErr = err; cancel() })
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	res := &MaterialsResult{Matter: m.Code, MatterName: m.Name, ConsentID: consentID, Materials: entries, Missing: []string{}}
	for _, e := range entries {
		if e.State != StateFound && !e.Optional {
			res.Missing = append(res.Missing, e.Name)
		}
	}
	return res, nil
}

// stateOf maps a current status and the validity period to a material state.
func stateOf(lic *license.License, st license.Status, now time.Time) string {
	switch st {
	case license.StatusValid:
		if reason, _ := lic.ValidityAt(now); reason == "expired" {
			return StateExpired
		} else if reason != "" {
			return StateNotFound // not yet valid or bad dates: not usable
		}
		return StateFound
	case license.StatusSuspended:
		return StateSuspended
	case license.StatusExpired:
		return StateExpired
	case license.StatusRevoked, license.StatusWithdrawn, license.StatusCancelled:
		return StateRevoked
	}
	return StateNotFound // transferred, superseded/other, unknown
}

// stateRank orders states from the most to the least useful.
var stateRank = map[string]int{StateFound: 0, StateSuspended: 1, StateExpired: 2, StateRevoked: 3, StateNotFound: 4}

func (s *Service) licenseMaterial(ctx context.Context, caller Caller, m *Matter, mat Material,
	holderLicenses func(context.Context) ([]license.Summary, error), base Use, now time.Time) (MaterialEntry, error) {
	e := MaterialEntry{Kind: "license", LicenseType: mat.LicenseType, State: StateNotFound}
	sums, err := holderLicenses(ctx)
	if err != nil {
		return e, err
	}
	var cands []license.Summary
	forbiddenSeen := false
	for _, sum := range sums {
		if sum.TypeCode != mat.LicenseType || sum.SupersededBy != "" {
			continue
		}
		ok, err := permitted(caller, m, sum.TypeCode, sum.Authority)
		if err != nil {
			return e, err
		}
		if !ok {
			forbiddenSeen = true
			continue
		}
		cands = append(cands, sum)
	}
	if len(cands) == 0 {
		if forbiddenSeen {
			e.State, e.Detail = StateNotPermitted, "the caller is not granted this license type or its issuing authority"
		} else if err := caller.Authorize(auth.OpLicenseLookup, auth.Resource{LicenseType: mat.LicenseType, Matter: m.Code}); isForbidden(err) {
			e.State, e.Detail = StateNotPermitted, "the caller is not granted this license type"
		}
		return e, nil
	}
	// The best candidate by its current status (never the index's).
	var best *license.Record
	bestState := ""
	for _, c := range cands {
		rec, st, err := s.current(ctx, c.Identifier)
		if licensehub.IsCode(err, licensehub.ELICNOTFOUND) {
			continue
		}
		if err != nil {
			return e, err
		}
		state := stateOf(rec.License, st, now)
		if best == nil || stateRank[state] < stateRank[bestState] ||
			(stateRank[state] == stateRank[bestState] && rec.Identifier > best.Identifier) {
			rec.Status = st
			best, bestState = rec, state
		}
	}
	if best == nil {
		return e, nil
	}
	e.State = bestState
	v := licenseView(best, best.Status, mat.Fields)
	if bestState != StateFound {
		e.Detail = "license " + best.Identifier + " is " + v.StatusName
		if bestState == StateExpired && best.Status == license.StatusValid {
			e.Detail = "license " + best.Identifier + " expired after " + best.License.ValidUntil
		}
		e.License = v
		return e, nil
	}
	v.Use, err = s.recordUse(ctx, base, best.Identifier, "", best.Document)
	if err != nil {
		return e, err
	}
	e.License = v
	return e, nil
}

func (s *Service) certificateMaterial(ctx context.Context, mat Material, req MaterialsRequest, base Use) (MaterialEntry, error) {
	e := MaterialEntry{Kind: "certificate", Certificate: mat.Certificate}
	if s.cfg.Gateway == nil {
		e.State, e.Detail = StateUpstreamUnavailable, "no adapters are connected to this hub"
		return e, nil
	}
	params := map[string]string{}
	for name, src := range mat.Params {
		v := ""
		switch src.Kind {
		case ParamHolder:
			v = req.HolderCode
		case ParamHolderName:
			v = req.HolderName
		case ParamFixed:
			v = src.Value
		case ParamInput:
			v = req.Inputs[src.Value]
		}
		if v == "" {
			e.State = StateNeedsInput
			e.Detail = "parameter " + name + " needs " + describe(src)
			return e, nil
		}
		params[name] = v
	}
	iss, err := s.cfg.Gateway.Certify(ctx, mat.Certificate, params)
	if err != nil {
		code := licensehub.ErrorCode(err)
		switch {
		case code == licensehub.EUPSTREAM || code == licensehub.EUPSTREAMBAD || code == licensehub.ETIMEOUT:
			e.State, e.Detail = StateUpstreamUnavailable, licensehub.Message(err)
			e.RetryAfterSeconds = retryAfter(err)
		case code == licensehub.ENOTFOUND || code == licensehub.ELICNOTFOUND:
			e.State, e.Detail = StateNotFound, licensehub.Message(err)
		case isForbidden(err):
			e.State, e.Detail = StateNotPermitted, licensehub.Message(err)
		case code == licensehub.EINVALID:
			e.State, e.Detail = StateNeedsInput, licensehub.Message(err)
			if src, ok := mat.Params[strings.TrimPrefix(fieldOf(err), "params.")]; ok {
				e.Detail = describe(src) + ": " + e.Detail
			}
		case ctx.Err() != nil:
			return e, licensehub.Wrap(ctx.Err(), licensehub.ETIMEOUT, "materials assembly interrupted")
		default:
			// a signing failure or a bug: the material cannot be had now
			e.State, e.Detail = StateUpstreamUnavailable, "the certificate could not be issued"
		}
		return e, nil
	}
	if len(iss.Mismatched) > 0 {
		// A check, not a query: the mismatch is the answer, and the
		// certificate that attests it is no material to use.
		givens := make([]string, len(iss.Mismatched))
		for i, p := range iss.Mismatched {
			givens[i] = p
			if src, ok := mat.Params[p]; ok {
				givens[i] += " (" + describe(src) + ")"
			}
		}
		e.State = StateMismatch
		e.Detail = "the " + iss.Certificate.Source.System + " record does not match the given " + strings.Join(givens, ", ")
		return e, nil
	}
	c := iss.Certificate
	v := &CertificateView{Kind: c.Kind, Title: c.Title, Number: c.Number, Issuer: c.Issuer, Source: c.Source,
		Subject: c.Subject, FetchedAt: c.FetchedAt, ValidUntil: c.ValidUntil, Data: minimise(c.Data, mat.Fields)}
	v.Use, err = s.recordUse(ctx, base, "", c.Number, iss.Document)
	if err != nil {
		return e, err
	}
	e.State, e.CertificateView = StateFound, v
	return e, nil
}

func describe(src ParamSource) string {
	switch src.Kind {
	case ParamHolder:
		return "the holder code"
	case ParamHolderName:
		return "the holder's name"
	case ParamInput:
		return "the input " + src.Value
	}
	return "a value"
}

// retryAfter reads retry_after_seconds from an error's details.
func retryAfter(err error) int {
	var e *licensehub.Error
	if !errors.As(err, &e) {
		return 0
	}
	switch v := e.Details["retry_after_seconds"].(type) {
	case int:
		return v
	case int64:
		return int(v)
	case float64:
		return int(v)
	}
	return 0
}

// fieldOf returns the field an error names, or "".
func fieldOf(err error) string {
	var e *licensehub.Error
	if errors.As(err, &e) {
		return e.Field
	}
	return ""
}
