package api

import (
	"strconv"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/authority"
)

// Authorities is the registry of issuing authorities (authority.Registry).
type Authorities interface {
	Authorities() []*authority.Authority
	Authority(code string) (*authority.Authority, bool)
}

// mountAuthorities publishes the issuing-authority registry (public, like
// the catalog: who issues licenses here, and under which name, is what a
// verifier checks a license's issuer against).
func (s *Server) mountAuthorities(reg Authorities) {
	s.app.Get("/v1/authorities", func(c *fiber.Ctx) error {
		return c.JSON(fiber.Map{"authorities": reg.Authorities()})
	})
	s.app.Get("/v1/authorities/:code", func(c *fiber.Ctx) error {
		code := c.Params("code")
		a, ok := reg.Authority(code)
		if !ok {
			what := "with this code" // a long or broken code is not echoed
			if len(code) <= 32 && utf8.ValidString(code) {
				what = strconv.Quote(code)
			}
			return licensehub.FieldError(licensehub.ENOTFOUND, "code", "no issuing authority %s in the registry (GET /v1/authorities lists them)", what)
		}
		return c.JSON(a)
	})
}
