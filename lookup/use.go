package lookup

import (
	"context"
	"encoding/json"
	"time"

	"github.com/licensehub/licensehub"
)

// Use is a use record (加注件): one material handed to one approval system
// for one matter, with why, by whom, until when, and the full signed
// original. Kept in the KV under its access code while the code is valid;
// the lookup's audit record is its durable trace.
type Use struct {
	ID                  string    `json:"id"` // hex of the first 16 bytes of SM3(access code)
	Matter              string    `json:"matter"`
	MatterName          string    `json:"matter_name"`
	Material            string    `json:"material"` // the material's name in the matter
	App                 string    `json:"app"`
	Reason              string    `json:"reason"` // 用证事由 (the matter's name when a consent gave none)
	Operator            *Operator `json:"operator,omitempty"`
	ConsentID           string    `json:"consent_id,omitempty"`
	Identifier          string    `json:"identifier,omitempty"`         // a license's
	CertificateNumber   string    `json:"certificate_number,omitempty"` // a certificate's
	CreatedAt           time.Time `json:"created_at"`
	ExpiresAt           time.Time `json:"expires_at"`             // the annotated copy is valid until
	AccessCodeExpiresAt time.Time `json:"access_code_expires_at"` // the code reads it until
	// Document is the full signed document, byte for byte (base64 in JSON).
	Document []byte `json:"document"`
}

func kvUse(id string) string { return "lookup:use:" + id }

// useFor starts a use record for a material of m.
func useFor(m *Matter, mat Material, caller Caller, authz Authorization, consentID string, now time.Time) Use {
	reason := authz.Reason
	if reason == "" {
		reason = m.Name
	}
	u := Use{Matter: m.Code, MatterName: m.Name, Material: mat.Name, App: caller.App, Reason: reason,
		ConsentID: consentID, CreatedAt: now.UTC().Truncate(time.Second)}
	if authz.Operator != nil {
		op := *authz.Operator
		u.Operator = &op
	}
	return u
}

// recordUse keeps the use record under its access code for the code's
// lifetime and returns the reference to hand out. The durable record of
// the use is the audit record of the lookup, which names every use ID
// (UseRef.Audit); the signed original is the library's (or, for a
// certificate, was handed out in the answer).
func (s *Service) recordUse(ctx context.Context, u Use, identifier, certNumber string, doc []byte) (*UseRef, error) {
	code := randomToken()
	u.ID = idOf(code)
	u.Identifier, u.CertificateNumber = identifier, certNumber
	if identifier == "" {
		// A certificate exists nowhere else; a license's document is the
		// library's (immutable) and is read back by ReadUse.
		u.Document = doc
	}
	u.AccessCodeExpiresAt = u.CreatedAt.Add(s.cfg.AccessCodeTTL)
	u.ExpiresAt = u.CreatedAt.Add(s.cfg.UseTTL)
	raw, err := json.Marshal(u)
	if err != nil {
		return nil, licensehub.Wrap(err, licensehub.EINTERNAL, "encoding a use record")
	}
	kctx, cancel := context.WithTimeout(ctx, s.cfg.OpTimeout)
	err = s.cfg.KV.Set(kctx, kvUse(u.ID), raw, s.cfg.AccessCodeTTL)
	cancel()
	if err != nil {
		return nil, licensehub.Wrap(err, licensehub.EUNAVAILABLE, "storing the use record's access code")
	}
	return &UseRef{ID: u.ID, AccessCode: code, AccessCodeExpiresAt: u.AccessCodeExpiresAt, ExpiresAt: u.ExpiresAt,
		Of: identifier + certNumber}, nil
}

// ReadUse returns the use record of an access code while the code is
// valid: ENOTFOUND for an unknown, malformed or expired code.
func (s *Service) ReadUse(ctx context.Context, code string) (*Use, error) {
	notFound := licensehub.Errorf(licensehub.ENOTFOUND, "no valid use record for this access code")
	if !validSecret(code) {
		return nil, notFound
	}
	id := idOf(code)
	kctx, cancel := context.WithTimeout(ctx, s.cfg.OpTimeout)
	raw, err := s.cfg.KV.Get(kctx, kvUse(id))
	cancel()
	if licensehub.IsCode(err, licensehub.ENOTFOUND) {
		return nil, notFound
	}
	if err != nil {
		return nil, err
	}
	var u Use
	if err := json.Unmarshal(raw, &u); err != nil {
		return nil, licensehub.Wrap(err, licensehub.EINTERNAL, "use record %s is unreadable", id)
	}
	if u.ID != id || !s.cfg.Clock().Before(u.AccessCodeExpiresAt) {
		return nil, notFound
	}
	if u.Identifier != "" {
		// The document is immutable: the instance's cache, else the library.
		rec, ok := s.docs.Get(u.Identifier)
		if !ok {
			var err error
			if rec, _, err = s.read(ctx, u.Identifier); err != nil {
				return nil, err
			}
		}
		u.Document = rec.Document
	}
	return &u, nil
}

// Uses lists the use records the lookup made.
func (r *Result) Uses() []*UseRef {
	var out []*UseRef
	for _, v := range r.Licenses {
		if v.Use != nil {
			out = append(out, v.Use)
		}
	}
	return out
}

// Uses lists the use records the assembly made.
func (r *MaterialsResult) Uses() []*UseRef {
	var out []*UseRef
	for _, m := range r.Materials {
		switch {
		case m.License != nil && m.License.Use != nil:
			out = append(out, m.License.Use)
		case m.CertificateView != nil && m.CertificateView.Use != nil:
			out = append(out, m.CertificateView.Use)
		}
	}
	return out
}
