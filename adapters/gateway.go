package adapters

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/adapters/upstream"
	"github.com/licensehub/licensehub/ident"
	"github.com/licensehub/licensehub/signing"
)

// CertificateType marks the body of a derived certificate.
const CertificateType = "licensehub.certificate"

// Certificate is the signed body of a certificate (证明) derived from an
// upstream's answer: the hub vouches that the source system said Data about
// Subject at FetchedAt, and the certificate is good until ValidUntil.
type Certificate struct {
	Type       string         `json:"type"` // CertificateType
	Kind       string         `json:"kind"`
	Title      string         `json:"title"`
	Number     string         `json:"number"`
	Issuer     Party          `json:"issuer"` // the hub's own authority
	Source     Source         `json:"source"`
	Subject    Subject        `json:"subject"`
	FetchedAt  string         `json:"fetched_at"`  // RFC 3339 UTC, whole seconds
	ValidUntil string         `json:"valid_until"` // RFC 3339 UTC, whole seconds
	Data       map[string]any `json:"data"`
}

// Party names an authority.
type Party struct {
	Name string `json:"name"`
	Code string `json:"code"`
}

// Source names the upstream system and service that answered.
type Source struct {
	System    string `json:"system"`
	ServiceID string `json:"service_id"`
}

// Subject is whom the certificate is about: the holder code taken from the
// query (id_number: a resident, credit_code: an organisation).
type Subject struct {
	Code     string `json:"code"`
	CodeType string `json:"code_type"`
}

// Connected is an upstream client the gateway asks and reports on;
// *upstream.Client is one.
type Connected interface {
	Querier
	Status() upstream.Status
}

// GatewayConfig configures a Gateway.
type GatewayConfig struct {
	Upstreams map[string]Connected // by upstream name; a missing one is "not connected"
	Kinds     []Kind
	Signers   signing.SignerSource
	Authority Party         // the hub's own authority, whose key signs certificates
	Validity  time.Duration // how long a certificate is valid
	Clock     func() time.Time
}

// Gateway turns upstream answers into signed certificates.
type Gateway struct {
	cfg   GatewayConfig
	kinds map[string]Kind
}

// NewGateway checks cfg (every kind valid, names unique).
func NewGateway(cfg GatewayConfig) (*Gateway, error) {
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Signers == nil || cfg.Authority.Code == "" || cfg.Validity <= 0 {
		return nil, licensehub.Errorf(licensehub.EINVALID, "adapters: a gateway needs signers, the hub's authority and a validity")
	}
	g := &Gateway{cfg: cfg, kinds: map[string]Kind{}}
	for _, k := range cfg.Kinds {
		if err := k.Validate(); err != nil {
			return nil, err
		}
		if _, dup := g.kinds[k.Name]; dup {
			return nil, licensehub.FieldError(licensehub.EINVALID, "name", "certificate kind %s is defined twice", k.Name)
		}
		g.kinds[k.Name] = k
	}
	return g, nil
}

// Kinds lists the certificate kinds, by name.
func (g *Gateway) Kinds() []Kind {
	out := make([]Kind, 0, len(g.kinds))
	for _, k := range g.kinds {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Statuses reports every connected upstream, by name.
func (g *Gateway) Statuses() []upstream.Status {
	names := make([]string, 0, len(g.cfg.Upstreams))
	for n := range g.cfg.Upstreams {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]upstream.Status, 0, len(names))
	for _, n := range names {
		out = append(out, g.cfg.Upstreams[n].Status())
	}
	return out
}

// Issued is a signed certificate.
type Issued struct {
	Certificate Certificate
	Document    []byte // the signed document (canonical JSON)
	// Mismatched lists the verified parameters (Kind.Verifies, e.g.
	// "name") the upstream's record does not match: the certificate then
	// attests the mismatch and carries nothing else.
	Mismatched []string
}

// Certify checks the parameters ([Kind.Check]: every refusal happens
// before any upstream call), asks the kind's upstream, maps its answer and
// signs the certificate. An upstream that is down or open-circuited is
// EUPSTREAM with a retry-after, a malformed answer EUPSTREAMBAD; either way
// nothing is signed.
func (g *Gateway) Certify(ctx context.Context, kind string, params map[string]string) (*Issued, error) {
	k, ok := g.kinds[kind]
	if !ok {
		return nil, licensehub.FieldError(licensehub.ENOTFOUND, "kind", "no certificate kind %q", kind)
	}
	q, err := k.Check(params, g.cfg.Clock())
	if err != nil {
		return nil, err
	}
	subject := subjectOf(q)
	up, ok := g.cfg.Upstreams[k.Upstream]
	if !ok {
		return nil, &licensehub.Error{Code: licensehub.EUPSTREAM, Message: k.Upstream + " is not connected to this hub",
			Details: map[string]any{"upstream": k.Upstream}}
	}
	a, err := k.ask(ctx, up, q)
	if err != nil {
		return nil, err
	}
	now := g.cfg.Clock().UTC().Truncate(time.Second)
	cert := Certificate{Type: CertificateType, Kind: k.Name, Title: k.Title, Number: certificateNumber(now),
		Issuer: g.cfg.Authority, Source: Source{System: k.Upstream, ServiceID: k.ServiceID}, Subject: subject,
		FetchedAt: now.Format(time.RFC3339), ValidUntil: now.Add(g.cfg.Validity).Format(time.RFC3339), Data: a.Data}
	body, err := json.Marshal(cert)
	if err != nil {
		return nil, licensehub.Wrap(err, licensehub.EINTERNAL, "encoding a certificate")
	}
	signer, err := g.cfg.Signers.SignerFor(g.cfg.Authority.Code, now)
	if err != nil {
		return nil, err
	}
	doc, err := signing.Sign(ctx, signer, body, now)
	if err != nil {
		return nil, err
	}
	raw, err := doc.Marshal()
	if err != nil {
		return nil, err
	}
	return &Issued{Certificate: cert, Document: raw, Mismatched: a.Mismatched}, nil
}

// subjectOf takes the holder code from the checked query parameters
// (Kind.Validate makes sure a kind takes one).
func subjectOf(q url.Values) Subject {
	if code := q.Get("id_number"); code != "" {
		return Subject{Code: code, CodeType: ident.HolderResidentID}
	}
	return Subject{Code: q.Get("credit_code"), CodeType: ident.HolderCreditCode}
}

// certificateNumber is "ZM" + the date + 16 random hex digits.
func certificateNumber(now time.Time) string {
	var b [8]byte
	rand.Read(b[:])
	return "ZM" + now.Format("20060102") + strings.ToUpper(hex.EncodeToString(b[:]))
}
