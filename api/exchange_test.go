package api

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/licensehub/licensehub/auth"
	"github.com/licensehub/licensehub/exchange"
)

func TestExchangeFeedAndReconcile(t *testing.T) {
	kv, objects := newTestStores(t)
	at := time.Now().UTC().Add(-time.Hour)
	if ok, err := exchange.RecordCatalogChange(t.Context(), objects, kv, exchange.CatalogChange{Digest: "abc", Types: []string{"t"}}, at); err != nil || !ok {
		t.Fatalf("catalog event %v %v", ok, err)
	}
	rec := &exchange.Reconciler{Objects: objects}
	registry := provinceAndIssuer(t, "exchange.read", "license.read")
	h := startWith(t, Options{Auth: auth.NewAuthenticator(registry, kv), Limiter: auth.NewLimiter(kv),
		Audit: newTrail(t, kv), Exchange: &Exchange{Feed: &exchange.Feed{Objects: objects, Authority: "hub", Settle: 15 * time.Second},
			Digest: rec.Digest}}, nil)

	resp, b := h.call(t, "province", http.MethodGet, "/v1/exchange/changes?limit=10", "", time.Now(), nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("changes %d %s", resp.StatusCode, b)
	}
	var page exchange.Page
	if err := json.Unmarshal(b, &page); err != nil || len(page.Changes) != 1 || page.Changes[0].ID != "catalog/abc" || page.Next == "" {
		t.Fatalf("page %s %v", b, err)
	}
	resp, b = h.call(t, "province", http.MethodGet, "/v1/exchange/changes?after="+page.Next, "", time.Now(), nil)
	if err := json.Unmarshal(b, &page); resp.StatusCode != http.StatusOK || err != nil || len(page.Changes) != 0 {
		t.Fatalf("second page %d %s", resp.StatusCode, b)
	}
	if resp, b = h.call(t, "province", http.MethodGet, "/v1/exchange/changes?limit=0", "", time.Now(), nil); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("limit 0: %d %s", resp.StatusCode, b)
	}
	day := at.Format(exchange.DateLayout)
	resp, b = h.call(t, "province", http.MethodGet, "/v1/exchange/reconcile?ids=1&date="+day, "", time.Now(), nil)
	var dd exchange.DayDigest
	if err := json.Unmarshal(b, &dd); resp.StatusCode != http.StatusOK || err != nil || dd.Count != 1 || dd.Date != day || len(dd.IDs) != 1 {
		t.Fatalf("reconcile %d %s", resp.StatusCode, b)
	}
	if resp, b = h.call(t, "province", http.MethodGet, "/v1/exchange/reconcile?date=yesterday", "", time.Now(), nil); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad date: %d %s", resp.StatusCode, b)
	}
	if resp, b = h.call(t, "issuer", http.MethodGet, "/v1/exchange/changes", "", time.Now(), nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("issuer: %d %s", resp.StatusCode, b)
	}
}
