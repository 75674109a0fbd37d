package api

import (
	"context"
	"github.com/gofiber/fiber/v2"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/auth"
)

// Routes are registered in three groups, in this order, and Fiber tries
// them in registration order:
//
//  1. public: /healthz, /readyz, /metrics (unless server.public_metrics is
//     false), the key registry (GET /v1/keys, GET /v1/keys/{kid}) and
//     POST /v1/verify — anyone may check a license;
//  2. the authentication and rate-limit middleware for everything under /v1;
//  3. everything else under /v1, each handler authorising its operation.
//
// A route added to group 1 is public by that act alone; nothing else is.

const localMember localsKey = iota + 100

// authenticate checks the caller's HMAC-SM3 signature, nonce and clock, then
// its rate limit, and remembers the member system for the handlers.
func (s *Server) authenticate(c *fiber.Ctx) error {
	m, err := s.auth.Authenticate(c.UserContext(), auth.Request{
		Method:      c.Method(),
		EscapedPath: string(c.Request().URI().PathOriginal()),
		RawQuery:    string(c.Request().URI().QueryString()),
		Header:      func(name string) string { return c.Get(name) },
		Body:        s.signedBody(c), // the upload's is not held: conversions.go
		Admit:       s.admit,
	})
	if err != nil {
		return err
	}
	c.Locals(localMember, m)
	return c.Next()
}

// admit applies the member's rate limit (nil without a limiter). A limiter
// whose counter store is down refuses (503) rather than letting unlimited
// traffic through.
func (s *Server) admit(ctx context.Context, m *auth.Member) error {
	if s.limiter == nil {
		return nil
	}
	_, err := s.limiter.Allow(ctx, m)
	return err
}

// member returns the authenticated caller (nil on public routes).
func member(c *fiber.Ctx) *auth.Member {
	m, _ := c.Locals(localMember).(*auth.Member)
	return m
}

// authorize checks that the caller may perform op on res. Routes behind
// authenticate always have a member; one without is a wiring bug.
func authorize(c *fiber.Ctx, op string, res auth.Resource) (*auth.Member, error) {
	m := member(c)
	if m == nil {
		return nil, licensehub.Errorf(licensehub.EINTERNAL, "route %s is not behind authentication", c.Path())
	}
	return m, m.Authorize(op, res)
}
