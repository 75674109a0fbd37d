package api

import (
	"bytes"
	"context"
	"encoding/json"

	"github.com/gofiber/fiber/v2"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/audit"
	"github.com/licensehub/licensehub/auth"
	"github.com/licensehub/licensehub/exchange"
)

// InboundReceiver receives the provincial platform's envelopes
// (*exchange.Inbound).
type InboundReceiver interface {
	Receive(ctx context.Context, raw []byte) (exchange.Result, error)
	ReceiveBatch(ctx context.Context, envelopes []json.RawMessage) ([]exchange.Result, error)
}

var _ InboundReceiver = (*exchange.Inbound)(nil)

// mountInbound serves POST /v1/exchange/inbound: licenses issued elsewhere
// in the province and their status changes, from the provincial platform
// only (operation exchange.inbound; the grants decide who holds it).
func (s *Server) mountInbound(in InboundReceiver) {
	s.app.Post("/v1/exchange/inbound", func(c *fiber.Ctx) error { return s.receiveInbound(c, in) })
}

// inboundBatch is a batch of envelopes, each checked by the exchange.
type inboundBatch struct {
	Envelopes []json.RawMessage `json:"envelopes"`
}

// receiveInbound takes one envelope (answered with its result, or its
// error: SIGNATURE_INVALID and the like, nothing stored) or
// {"envelopes":[...]} (up to exchange.MaxBatch; 200 with one result per
// envelope, a rejected one carrying its code).
func (s *Server) receiveInbound(c *fiber.Ctx, in InboundReceiver) error {
	if _, err := authorize(c, auth.OpExchangeInbound, auth.Resource{}); err != nil {
		return err
	}
	rec := audit.Record{Operation: auth.OpExchangeInbound}
	raw, err := jsonBody(c)
	if err != nil {
		return s.record(c, rec, "", err)
	}
	var batch inboundBatch
	isBatch := false
	if trimmed := bytes.TrimSpace(raw); trimmed[0] == '{' {
		var probe map[string]json.RawMessage
		if json.Unmarshal(trimmed, &probe) == nil {
			_, isBatch = probe["envelopes"]
		}
	}
	if !isBatch {
		res, err := in.Receive(c.UserContext(), raw)
		if res.License != "" {
			rec.Licenses = []string{res.License}
		}
		if err := s.record(c, rec, "", err); err != nil {
			return err
		}
		return c.JSON(fiber.Map{"results": []exchange.Result{res}})
	}
	if err := decodeJSON(raw, &batch); err != nil {
		return s.record(c, rec, "", err)
	}
	if len(batch.Envelopes) == 0 || len(batch.Envelopes) > exchange.MaxBatch {
		return s.record(c, rec, "", licensehub.FieldError(licensehub.EINVALID, "envelopes",
			"a batch holds 1 to %d envelopes, got %d", exchange.MaxBatch, len(batch.Envelopes)))
	}
	results, err := in.ReceiveBatch(c.UserContext(), batch.Envelopes)
	seen := map[string]bool{}
	for _, r := range results {
		if r.License != "" && !seen[r.License] && r.Code == "" {
			seen[r.License] = true
			rec.Licenses = append(rec.Licenses, r.License)
		}
	}
	if err := s.record(c, rec, "", err); err != nil {
		return err
	}
	rejected := 0
	for _, r := range results {
		if r.Code != "" {
			rejected++
		}
	}
	return c.JSON(fiber.Map{"results": results, "rejected": rejected})
}
