package api

import (
	"context"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/audit"
	"github.com/licensehub/licensehub/auth"
	"github.com/licensehub/licensehub/exchange"
)

// Exchange serves the provincial platform's pull side:
//
//	GET /v1/exchange/changes?after=CURSOR&limit=N   the change feed (exchange.Feed), op exchange.read
//	GET /v1/exchange/reconcile?date=YYYY-MM-DD[&ids=1]  the hub's digest of a day, op exchange.read
//
// Every call is audited (operation exchange.read).
type Exchange struct {
	Feed   *exchange.Feed
	Digest func(ctx context.Context, date string) (exchange.DayDigest, error)
}

func (s *Server) mountExchange(x *Exchange) {
	s.app.Get("/v1/exchange/changes", func(c *fiber.Ctx) error { return s.exchangeChanges(c, x) })
	s.app.Get("/v1/exchange/reconcile", func(c *fiber.Ctx) error { return s.exchangeReconcile(c, x) })
}

func (s *Server) exchangeChanges(c *fiber.Ctx, x *Exchange) error {
	var page exchange.Page
	_, err := authorize(c, auth.OpExchangeRead, auth.Resource{})
	if err == nil {
		limit := 0
		if v := c.Query("limit"); v != "" {
			if limit, err = strconv.Atoi(v); err != nil || limit < 1 {
				err = licensehub.FieldError(licensehub.EINVALID, "limit", "limit must be 1..%d", exchange.MaxFeedLimit)
			}
		}
		if err == nil {
			page, err = x.Feed.Changes(c.UserContext(), c.Query("after"), limit)
		}
	}
	if err := s.record(c, audit.Record{Operation: auth.OpExchangeRead}, "", err); err != nil {
		return err
	}
	return c.JSON(page)
}

func (s *Server) exchangeReconcile(c *fiber.Ctx, x *Exchange) error {
	var dd exchange.DayDigest
	_, err := authorize(c, auth.OpExchangeRead, auth.Resource{})
	if err == nil {
		dd, err = x.Digest(c.UserContext(), c.Query("date"))
	}
	if err := s.record(c, audit.Record{Operation: auth.OpExchangeRead}, "", err); err != nil {
		return err
	}
	if c.Query("ids") != "1" {
		dd.IDs = nil
	}
	return c.JSON(dd)
}
