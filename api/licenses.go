package api

import (
	"context"
	"encoding/json"

	"github.com/gofiber/fiber/v2"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/audit"
	"github.com/licensehub/licensehub/auth"
	"github.com/licensehub/licensehub/catalog"
	"github.com/licensehub/licensehub/ident"
	"github.com/licensehub/licensehub/license"
)

// LicenseLibrary is what the API needs of the license library
// (license.Library).
type LicenseLibrary interface {
	Push(ctx context.Context, req license.PushRequest) (*license.PushResult, error)
	Get(ctx context.Context, identifier string) (*license.Record, error)
	Versions(ctx context.Context, identifier string) ([]string, error)
	ChangeStatus(ctx context.Context, identifier, op, reason, app string) (*license.StatusChange, error)
	NewVersion(ctx context.Context, identifier string, req license.VersionRequest, op string) (*license.PushResult, error)
}

// Catalog is the license catalog (catalog.Catalog).
type Catalog interface {
	Types() []*catalog.Type
	Type(code string) (*catalog.Type, bool)
}

// HeaderIdempotencyKey makes a push safe to retry.
const HeaderIdempotencyKey = "Idempotency-Key"

// mountCatalog publishes the catalog (public: what licenses exist and what
// they carry is no secret).
func (s *Server) mountCatalog(cat Catalog) {
	s.app.Get("/v1/catalog/types", func(c *fiber.Ctx) error {
		return c.JSON(fiber.Map{"types": cat.Types()})
	})
	s.app.Get("/v1/catalog/types/:code", func(c *fiber.Ctx) error {
		t, ok := cat.Type(c.Params("code"))
		if !ok {
			return licensehub.FieldError(licensehub.ENOTFOUND, "code", "no license type %q in the catalog", c.Params("code"))
		}
		return c.JSON(t)
	})
}

func (s *Server) mountLicenses() {
	s.app.Post("/v1/licenses", s.pushLicense)
	s.app.Get("/v1/licenses/:id", s.getLicense)
	s.app.Get("/v1/licenses/:id/versions", s.licenseVersions)
	s.app.Post("/v1/licenses/:id/status", s.changeStatus)
	s.app.Post("/v1/licenses/:id/versions", s.newVersion)
}

// pushLicense: an issuing department pushes a newly issued license.
func (s *Server) pushLicense(c *fiber.Ctx) error {
	var req license.PushRequest
	if err := decodeBody(c, &req); err != nil {
		return err
	}
	res := auth.Resource{LicenseType: req.TypeCode, Authority: req.Issuer.Code}
	m, err := authorize(c, auth.OpLicenseCreate, res)
	if err != nil {
		return err
	}
	req.App, req.IdempotencyKey = m.AppID(), c.Get(HeaderIdempotencyKey)
	out, err := s.library.Push(c.UserContext(), req)
	rec := audit.Record{Operation: auth.OpLicenseCreate}
	if req.Matter != nil {
		rec.Matter = req.Matter.Code
	}
	if out != nil {
		rec.Licenses = []string{out.Identifier}
	}
	if err := s.record(c, rec, req.Holder.Code, err); err != nil {
		return err
	}
	return sendDocument(c, out)
}

// authorizeLicense checks op on the license named in the path. The type and
// issuer a grant is checked against come from the identifier itself, so a
// caller without the grant learns nothing about the license.
func authorizeLicense(c *fiber.Ctx, op string) (string, *auth.Member, error) {
	id := c.Params("id")
	parsed, err := ident.Parse(id)
	if err != nil {
		return "", nil, ident.WithField(err, "id")
	}
	m, err := authorize(c, op, auth.Resource{LicenseType: parsed.TypeCode, Authority: parsed.IssuerCode})
	return id, m, err
}

// licenseView is GET /v1/licenses/{id}.
type licenseView struct {
	Identifier        string                 `json:"identifier"`
	Status            license.Status         `json:"status"`
	StatusName        string                 `json:"status_name"`
	StatusDescription string                 `json:"status_description,omitempty"`
	Previous          string                 `json:"previous,omitempty"`
	SupersededBy      string                 `json:"superseded_by,omitempty"`
	Versions          []string               `json:"versions"`
	History           []license.StatusChange `json:"history"`
	// Provenance of a license received from the provincial platform (a
	// stock conversion's is inside the document).
	Provenance *license.Provenance `json:"provenance,omitempty"`
	Document   json.RawMessage     `json:"document"`
}

func (s *Server) getLicense(c *fiber.Ctx) error {
	if matter := c.Query("matter"); matter != "" && s.lookups != nil {
		return s.lookupOne(c, c.Params("id"), matter)
	}
	id, _, err := authorizeLicense(c, auth.OpLicenseRead)
	if err != nil {
		return err
	}
	r, err := s.library.Get(c.UserContext(), id)
	holder := ""
	if r != nil && r.License != nil {
		holder = r.License.Holder.Code
	}
	if err := s.record(c, audit.Record{Operation: auth.OpLicenseRead, Licenses: []string{id}}, holder, err); err != nil {
		return err
	}
	return c.JSON(licenseView{Identifier: r.Identifier, Status: r.Status, StatusName: r.StatusName,
		StatusDescription: r.StatusDescription, Previous: r.Previous, SupersededBy: r.SupersededBy,
		Versions: nonNil(r.Versions), History: nonNil(r.History), Provenance: r.Provenance, Document: r.Document})
}

func (s *Server) licenseVersions(c *fiber.Ctx) error {
	id, _, err := authorizeLicense(c, auth.OpLicenseRead)
	if err != nil {
		return err
	}
	versions, err := s.library.Versions(c.UserContext(), id)
	if err := s.record(c, audit.Record{Operation: auth.OpLicenseRead, Licenses: []string{id}}, "", err); err != nil {
		return err
	}
	return c.JSON(fiber.Map{"identifier": id, "versions": nonNil(versions)})
}

// statusBody is POST /v1/licenses/{id}/status.
type statusBody struct {
	Op     string `json:"op" maxlen:"16"`
	Reason string `json:"reason" maxlen:"500"`
}

// changeStatus: suspend, restore, cancel, withdraw, revoke or expire.
func (s *Server) changeStatus(c *fiber.Ctx) error {
	id, m, err := authorizeLicense(c, auth.OpLicenseChange)
	if err != nil {
		return err
	}
	var body statusBody
	if err := decodeBody(c, &body); err != nil {
		return err
	}
	change, err := s.library.ChangeStatus(c.UserContext(), id, body.Op, body.Reason, m.AppID())
	if err := s.record(c, audit.Record{Operation: auth.OpLicenseChange, Licenses: []string{id}}, "", err); err != nil {
		return err
	}
	return c.JSON(change)
}

// newVersion: renewal (?op=renew) or amendment (?op=change) makes the next
// version, with its own identifier referencing this one.
func (s *Server) newVersion(c *fiber.Ctx) error {
	id, m, err := authorizeLicense(c, auth.OpLicenseChange)
	if err != nil {
		return err
	}
	var req license.VersionRequest
	if err := decodeBody(c, &req); err != nil {
		return err
	}
	req.App, req.IdempotencyKey = m.AppID(), c.Get(HeaderIdempotencyKey)
	op := c.Query("op", license.OpRenew)
	out, err := s.library.NewVersion(c.UserContext(), id, req, op)
	rec := audit.Record{Operation: auth.OpLicenseChange, Licenses: []string{id}}
	if out != nil {
		rec.Licenses = append(rec.Licenses, out.Identifier)
	}
	if err := s.record(c, rec, req.Holder.Code, err); err != nil {
		return err
	}
	return sendDocument(c, out)
}

// sendDocument answers a push or a new version: the stored signed document,
// 201 when this request made it, 200 when it was an identical retry.
func sendDocument(c *fiber.Ctx, out *license.PushResult) error {
	status := fiber.StatusOK
	if out.Created {
		status = fiber.StatusCreated
	}
	c.Location("/v1/licenses/" + out.Identifier)
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Status(status).Send(out.Document)
}
