package api

import (
	"context"

	"github.com/gofiber/fiber/v2"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/audit"
	"github.com/licensehub/licensehub/license"
	"github.com/licensehub/licensehub/signing"
)

// DocumentVerifier checks a signed license document (license.Verifier).
type DocumentVerifier interface {
	Verify(ctx context.Context, raw []byte) (*license.Verdict, error)
}

// mountVerification publishes the key registry and the verification
// endpoint. Both are public: relying parties need no account to check a
// license.
func (s *Server) mountVerification(keys signing.KeySource, v DocumentVerifier) {
	s.app.Get("/v1/keys", func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderCacheControl, "public, max-age=300")
		return c.JSON(fiber.Map{"keys": keys.Keys()})
	})
	s.app.Get("/v1/keys/:kid", func(c *fiber.Ctx) error {
		k, err := keys.Key(c.Params("kid"))
		if err != nil {
			return err
		}
		c.Set(fiber.HeaderCacheControl, "public, max-age=300")
		return c.JSON(k)
	})
	s.app.Post("/v1/verify", func(c *fiber.Ctx) error {
		raw, err := jsonBody(c)
		if err != nil {
			if len(c.Body()) == 0 {
				err = licensehub.FieldError(licensehub.EMALFORMED, "body", "send the signed license document (JSON) as the request body")
			}
			return err
		}
		verdict, err := v.Verify(c.UserContext(), raw)
		rec := audit.Record{Operation: "license.verify"}
		if verdict != nil && verdict.Identifier != "" {
			rec.Licenses = []string{verdict.Identifier}
		}
		if err := s.record(c, rec, "", err); err != nil {
			return err
		}
		return c.JSON(verdict)
	})
}
