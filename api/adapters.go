package api

import (
	"context"

	"github.com/gofiber/fiber/v2"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/adapters"
	"github.com/licensehub/licensehub/adapters/upstream"
	"github.com/licensehub/licensehub/audit"
	"github.com/licensehub/licensehub/auth"
)

// CertificateGateway turns upstream answers into signed certificates
// (adapters.Gateway).
type CertificateGateway interface {
	Certify(ctx context.Context, kind string, params map[string]string) (*adapters.Issued, error)
	Kinds() []adapters.Kind
	Statuses() []upstream.Status
}

// kindView is one certificate kind as GET /v1/adapters lists it.
type kindView struct {
	Name     string   `json:"name"`
	Title    string   `json:"title"`
	Upstream string   `json:"upstream"`
	Params   []string `json:"params"`
}

func (s *Server) mountAdapters() {
	s.app.Get("/v1/adapters", s.adapterStatus)
	s.app.Post("/v1/certificates/:kind", s.certify)
}

// adapterStatus shows operators each upstream's breaker state, recent error
// rate and latency.
func (s *Server) adapterStatus(c *fiber.Ctx) error {
	m := member(c)
	if m == nil || !m.HasRole(auth.RoleAdministrator) && !m.HasRole(auth.RoleSupervisor) {
		return licensehub.Errorf(licensehub.EFORBIDDENROLE, "adapter status is for administrators and supervisors")
	}
	kinds := make([]kindView, 0)
	for _, k := range s.gateway.Kinds() {
		kinds = append(kinds, kindView{Name: k.Name, Title: k.Title, Upstream: k.Upstream, Params: k.Params})
	}
	return c.JSON(fiber.Map{"upstreams": nonNil(s.gateway.Statuses()), "kinds": kinds})
}

// certifyBody is POST /v1/certificates/{kind}: the kind's parameters
// (each value at most 200 characters, each name at most maxKeyChars).
type certifyBody struct {
	Params map[string]string `json:"params" maxlen:"200"`
}

// certify: POST /v1/certificates/{kind} {"params": {"id_number": "…", "name": "…"}}
// answers a certificate signed by the hub, derived from the upstream's
// answer. Approval systems call it for a service matter (X-Hub-Matter).
func (s *Server) certify(c *fiber.Ctx) error {
	var body certifyBody
	if err := decodeBody(c, &body); err != nil {
		return err
	}
	if _, err := authorize(c, auth.OpLicenseLookup, auth.Resource{Matter: headerText(c, HeaderMatter)}); err != nil {
		return err
	}
	issued, err := s.gateway.Certify(c.UserContext(), c.Params("kind"), body.Params)
	rec := audit.Record{Operation: "certificate.issue"}
	holder := ""
	if issued != nil {
		rec.Licenses = []string{issued.Certificate.Number}
		holder = issued.Certificate.Subject.Code
	}
	if err := s.record(c, rec, holder, err); err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Status(fiber.StatusCreated).Send(issued.Document)
}
