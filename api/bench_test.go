package api

import (
	"bytes"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/licensehub/licensehub/audit"
	"github.com/licensehub/licensehub/client"
	"github.com/licensehub/licensehub/store/mem"
)

// BenchmarkAuthAudit measures what member-system security costs per
// request: the same small handler over real loopback HTTP, once behind
// HMAC-SM3 authentication, the rate limiter and a durable audit record
// (local journal with fsync, as in embedded mode), once public.
func BenchmarkAuthAudit(b *testing.B) {
	kv := mem.New()
	defer kv.Close()
	handler := func(s *Server) fiber.Handler {
		return func(c *fiber.Ctx) error {
			if err := s.record(c, audit.Record{Operation: "license.read", Licenses: []string{"1.2.156.3005.2.x"}}, "11010519491231002X", nil); err != nil {
				return err
			}
			return c.JSON(fiber.Map{"ok": true})
		}
	}
	run := func(b *testing.B, h *harness, app string) {
		body := []byte(`{"probe":1}`)
		httpc := &http.Client{}
		defer httpc.CloseIdleConnections()
		b.ResetTimer()
		for range b.N {
			req, _ := http.NewRequest("POST", h.url+"/v1/bench", bytes.NewReader(body))
			if app != "" {
				if err := client.SignRequest(req, body, client.Credentials{AppID: app, Secret: secretOf(app)}, time.Now()); err != nil {
					b.Fatal(err)
				}
			}
			resp, err := httpc.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Fatalf("status %d", resp.StatusCode)
			}
		}
	}
	b.Run("hub", func(b *testing.B) {
		h := startSecured(b, writeRegistry(b), kv, newTrail(b, kv))
		h.srv.Router().Post("/v1/bench", handler(h.srv))
		run(b, h, "bench")
	})
	b.Run("unauthenticated", func(b *testing.B) {
		h := startWith(b, Options{}, nil)
		h.srv.Router().Post("/v1/bench", handler(h.srv))
		run(b, h, "")
	})
}
