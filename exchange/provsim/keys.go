package provsim

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/signing"
)

// FetchHubKeys reads the hub's key registry (GET <hubURL>/v1/keys, whose
// answer is {"keys":[KeyInfo...]}) as a checked bundle.
func FetchHubKeys(ctx context.Context, hc *http.Client, hubURL string) (*signing.Bundle, error) {
	if hubURL == "" {
		return nil, licensehub.Wrap(errNoHubURL, licensehub.EUNAVAILABLE, "provsim: hub keys")
	}
	url := strings.TrimRight(hubURL, "/") + "/v1/keys"
	return fetchKeys(ctx, hc, url)
}

func fetchKeys(ctx context.Context, hc *http.Client, url string) (*signing.Bundle, error) {
	if hc == nil {
		hc = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, licensehub.Wrap(err, licensehub.EINVALID, "provsim: hub keys URL %s", url)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, licensehub.Wrap(err, licensehub.EUNAVAILABLE, "provsim: fetching the hub's keys")
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, licensehub.Wrap(err, licensehub.EUNAVAILABLE, "provsim: reading the hub's keys")
	}
	if resp.StatusCode != http.StatusOK {
		return nil, licensehub.Errorf(licensehub.EUNAVAILABLE, "provsim: GET %s: HTTP %d", url, resp.StatusCode)
	}
	var reg struct {
		Keys json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &reg); err != nil || len(reg.Keys) == 0 {
		return nil, licensehub.Errorf(licensehub.EUNAVAILABLE, "provsim: GET %s: not a key registry answer", url)
	}
	raw := fmt.Sprintf(`{"version":%d,"generated_at":%q,"keys":%s}`, signing.BundleVersion,
		time.Now().UTC().Format(time.RFC3339), reg.Keys)
	b, err := signing.ParseBundle([]byte(raw))
	if err != nil {
		return nil, licensehub.Wrap(err, licensehub.EUNAVAILABLE, "provsim: the hub's keys")
	}
	return b, nil
}

// remoteKeys is a KeySource read from the hub's registry: fetched on
// first use and again (at most once a second) when a kid is unknown.
type remoteKeys struct {
	url string
	hc  *http.Client
	now func() time.Time

	mu      sync.Mutex
	bundle  *signing.Bundle
	fetched time.Time
}

func (k *remoteKeys) current(refresh bool) (*signing.Bundle, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.bundle != nil && (!refresh || k.now().Sub(k.fetched) < time.Second) {
		return k.bundle, nil
	}
	if k.url == "/v1/keys" {
		return nil, licensehub.Wrap(errNoHubURL, licensehub.EUNAVAILABLE, "provsim: hub keys")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := fetchKeys(ctx, k.hc, k.url)
	k.fetched = k.now()
	if err != nil {
		if k.bundle != nil {
			return k.bundle, nil
		}
		return nil, err
	}
	k.bundle = b
	return b, nil
}

func (k *remoteKeys) Key(kid string) (signing.KeyInfo, error) {
	b, err := k.current(false)
	if err != nil {
		return signing.KeyInfo{}, err
	}
	ki, err := b.Key(kid)
	if err == nil {
		return ki, nil
	}
	if b, err2 := k.current(true); err2 == nil {
		return b.Key(kid)
	}
	return ki, err
}

func (k *remoteKeys) Keys() []signing.KeyInfo {
	b, err := k.current(false)
	if err != nil {
		return nil
	}
	return b.Keys()
}
