package api

import (
	"encoding/json"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/audit"
	"github.com/licensehub/licensehub/auth"
	"github.com/licensehub/licensehub/lookup"
)

// HeaderConsent carries the applicant's consent token on a lookup.
const HeaderConsent = "X-Hub-Consent"

// Lookups are the once-only routes: consents, minimised lookups per matter,
// materials assembly and annotated copies (lookup.Service, lookup.Consents).
type Lookups struct {
	Service  *lookup.Service
	Consents *lookup.Consents
}

func (s *Server) mountLookups() {
	s.app.Post("/v1/consents", s.createConsent)
	s.app.Delete("/v1/consents/:id", s.revokeConsent)
	s.app.Get("/v1/holders/:code/licenses", s.lookupByHolder)
	s.app.Post("/v1/matters/:code/materials", s.materials)
	s.app.Get("/v1/uses/:code", s.readUse)
}

// caller adapts the authenticated member for the lookup service.
func caller(c *fiber.Ctx) (lookup.Caller, error) {
	m := member(c)
	if m == nil {
		return lookup.Caller{}, licensehub.Errorf(licensehub.EINTERNAL, "route %s is not behind authentication", c.Path())
	}
	return lookup.Caller{App: m.AppID(), Authorize: m.Authorize}, nil
}

// authorization reads the consent token or the operator acting by duty.
func authorization(c *fiber.Ctx) lookup.Authorization {
	a := lookup.Authorization{ConsentToken: c.Get(HeaderConsent), Reason: headerText(c, HeaderReason)}
	if acct := headerText(c, HeaderOperatorAccount); acct != "" {
		a.Operator = &lookup.Operator{Account: acct, Name: headerText(c, HeaderOperatorName),
			Department: headerText(c, HeaderOperatorDepartment), Role: headerText(c, HeaderOperatorRole)}
	}
	return a
}

// consentBody is POST /v1/consents; from and until are date-times like
// 2026-12-07T09:30:00+08:00 (from: default now).
type consentBody struct {
	HolderCode     string `json:"holder_code" maxlen:"64"`
	HolderCodeType string `json:"holder_code_type" maxlen:"8"`
	Matter         string `json:"matter" maxlen:"64"`
	App            string `json:"app,omitempty" maxlen:"64"`
	From           string `json:"from,omitempty" maxlen:"40"`
	Until          string `json:"until" maxlen:"40"`
}

// createConsent: a citizen-facing app records the applicant's consent and
// gets the token the approval system will present.
func (s *Server) createConsent(c *fiber.Ctx) error {
	m, err := authorize(c, auth.OpConsentCreate, auth.Resource{})
	if err != nil {
		return err
	}
	var b consentBody
	if err := decodeBody(c, &b); err != nil {
		return err
	}
	var from, until time.Time
	if b.From != "" {
		if from, err = parseDateTime("from", b.From); err != nil {
			return err
		}
	}
	if b.Until != "" { // empty: Create says it is required
		if until, err = parseDateTime("until", b.Until); err != nil {
			return err
		}
	}
	if _, known := s.auth.Registry().Member(b.App); b.App != "" && !known {
		return licensehub.FieldError(licensehub.EINVALID, "app", "no member system with app ID %q", b.App)
	}
	consent, err := s.lookups.Consents.Create(c.UserContext(), lookup.ConsentRequest{HolderCode: b.HolderCode,
		HolderCodeType: b.HolderCodeType, Matter: b.Matter, App: b.App, From: from, Until: until, CreatedBy: m.AppID()})
	if err := s.record(c, audit.Record{Operation: auth.OpConsentCreate, Matter: b.Matter}, b.HolderCode, err); err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(consentView{ID: consent.ID, Token: consent.Token,
		HolderCode: consent.HolderCode, HolderCodeType: consent.HolderCodeType, Matter: consent.Matter,
		App: consent.App, From: consent.From, Until: consent.Until})
}

// consentView is what the citizen-facing app gets back: the token (shown
// once; the hub keeps only its hash) and what it authorises.
type consentView struct {
	ID             string    `json:"id"`
	Token          string    `json:"token"`
	HolderCode     string    `json:"holder_code"`
	HolderCodeType string    `json:"holder_code_type"`
	Matter         string    `json:"matter"`
	App            string    `json:"app,omitempty"`
	From           time.Time `json:"from"`
	Until          time.Time `json:"until"`
}

// revokeConsent: DELETE /v1/consents/{id}?holder=CODE, with immediate effect.
func (s *Server) revokeConsent(c *fiber.Ctx) error {
	if _, err := authorize(c, auth.OpConsentRevoke, auth.Resource{}); err != nil {
		return err
	}
	holder := c.Query("holder")
	if holder == "" {
		return licensehub.FieldError(licensehub.EINVALID, "holder",
			"required: the query parameter holder (the consent's holder code) confirms whose consent is revoked")
	}
	err := s.lookups.Consents.Revoke(c.UserContext(), c.Params("id"), holder)
	if err := s.record(c, audit.Record{Operation: auth.OpConsentRevoke}, holder, err); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// lookupByHolder: GET /v1/holders/{code}/licenses?matter=&type=&status=,
// with a consent or an operator acting by duty; only the fields the matter
// may see.
func (s *Server) lookupByHolder(c *fiber.Ctx) error {
	who, err := caller(c)
	if err != nil {
		return err
	}
	holder, matter := c.Params("code"), c.Query("matter")
	res, err := s.lookups.Service.ByHolder(c.UserContext(), who, matter, holder, authorization(c),
		lookup.Filters{Type: c.Query("type"), Status: c.Query("status")})
	rec := audit.Record{Operation: auth.OpLicenseLookup, Matter: matter}
	if res != nil {
		for _, v := range res.Licenses {
			rec.Licenses = append(rec.Licenses, v.Identifier)
		}
		rec.Uses = auditUses(res.Uses())
	}
	if err := s.record(c, rec, holder, err); err != nil {
		return err
	}
	return c.JSON(res)
}

// lookupOne serves GET /v1/licenses/{id}?matter=M: the minimised view of
// one license for a matter (the unqualified route is the issuer's read).
func (s *Server) lookupOne(c *fiber.Ctx, id, matter string) error {
	who, err := caller(c)
	if err != nil {
		return err
	}
	res, err := s.lookups.Service.Get(c.UserContext(), who, matter, id, authorization(c))
	holder, rec := "", audit.Record{Operation: auth.OpLicenseLookup, Matter: matter, Licenses: []string{id}}
	if res != nil && len(res.Licenses) == 1 {
		holder, rec.Uses = res.Licenses[0].Holder.Code, auditUses(res.Uses())
	}
	if err := s.record(c, rec, holder, err); err != nil {
		return err
	}
	return c.JSON(res)
}

// materialsBody is POST /v1/matters/{code}/materials.
type materialsBody struct {
	HolderCode string            `json:"holder_code" maxlen:"64"`
	HolderName string            `json:"holder_name" maxlen:"200"`
	Inputs     map[string]string `json:"inputs,omitempty" maxlen:"200"`
}

// materials: POST /v1/matters/{code}/materials gathers every material the
// matter needs, from the library and the adapters in parallel.
func (s *Server) materials(c *fiber.Ctx) error {
	who, err := caller(c)
	if err != nil {
		return err
	}
	var b materialsBody
	if err := decodeBody(c, &b); err != nil {
		return err
	}
	matter := c.Params("code")
	res, err := s.lookups.Service.MaterialsFor(c.UserContext(), who,
		lookup.MaterialsRequest{Matter: matter, HolderCode: b.HolderCode, HolderName: b.HolderName, Inputs: b.Inputs}, authorization(c))
	rec := audit.Record{Operation: auth.OpLicenseLookup, Matter: matter}
	if res != nil {
		for _, m := range res.Materials {
			if m.License != nil {
				rec.Licenses = append(rec.Licenses, m.License.Identifier)
			}
		}
		rec.Uses = auditUses(res.Uses())
	}
	if err := s.record(c, rec, b.HolderCode, err); err != nil {
		return err
	}
	return c.JSON(res)
}

// auditUses is what the audit record keeps of the use records a lookup
// made: it is their durable trace.
func auditUses(refs []*lookup.UseRef) []audit.Use {
	out := make([]audit.Use, len(refs))
	for i, u := range refs {
		out[i] = audit.Use{ID: u.ID, Of: u.Of, ExpiresAt: u.ExpiresAt.UTC().Format(audit.TimeLayout)}
	}
	return out
}

// readUse: GET /v1/uses/{access code} answers the annotated copy (加注件)
// with the full signed document, to the app it was made for, while the
// code is valid.
func (s *Server) readUse(c *fiber.Ctx) error {
	m := member(c)
	use, err := s.lookups.Service.ReadUse(c.UserContext(), c.Params("code"))
	if err == nil && use.App != m.AppID() {
		err = licensehub.Errorf(licensehub.ENOTFOUND, "no such access code") // another app's code reads as absent
	}
	rec := audit.Record{Operation: auth.OpLicenseRead}
	if use != nil && err == nil {
		rec.Matter, rec.Licenses = use.Matter, []string{use.Identifier + use.CertificateNumber}
	}
	if err := s.record(c, rec, "", err); err != nil {
		return err
	}
	return c.JSON(fiber.Map{"use": use, "document": json.RawMessage(use.Document)})
}
