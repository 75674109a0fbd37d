package lookup

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"time"

	"github.com/licensehub/licensehub"
)

// Use is a use record (加注件): one material handed to one approval system
// for one matter, with why, by whom, until when, and the full signed
// original. Stored create-only as uses/<ID>.json.
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

func useKey(id string) string { return "uses/" + id + ".json" }
func kvUse(id string) string  { return "lookup:use:" + id }

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

// recordUse stores the use record (create-only) and its access code and
// returns the reference to hand out.
func (s *Service) recordUse(ctx context.Context, u Use, identifier, certNumber string, doc []byte) (*UseRef, error) {
	code := randomToken()
	u.ID = idOf(code)
	u.Identifier, u.CertificateNumber, u.Document = identifier, certNumber, doc
	u.AccessCodeExpiresAt = u.CreatedAt.Add(s.cfg.AccessCodeTTL)
	u.ExpiresAt = u.CreatedAt.Add(s.cfg.UseTTL)
	raw, err := json.Marshal(u)
	if err != nil {
		return nil, licensehub.Wrap(err, licensehub.EINTERNAL, "encoding a use record")
	}
	octx, cancel := context.WithTimeout(ctx, s.cfg.OpTimeout)
	_, err = s.cfg.Objects.Create(octx, useKey(u.ID), bytes.NewReader(raw), int64(len(raw)),
		licensehub.PutOptions{ContentType: "application/json"})
	cancel()
	if err != nil {
		return nil, objectErr(err, "storing the use record")
	}
	kctx, cancel := context.WithTimeout(ctx, s.cfg.OpTimeout)
	_ = s.cfg.KV.Set(kctx, kvUse(u.ID), raw, s.cfg.AccessCodeTTL)
	cancel()
	return &UseRef{ID: u.ID, AccessCode: code, AccessCodeExpiresAt: u.AccessCodeExpiresAt, ExpiresAt: u.ExpiresAt}, nil
}

// ReadUse returns the use record of an access code while the code is
// valid: ENOTFOUND for an unknown, malformed or expired code. The KV
// holds the code for its TTL; on a KV miss the object store's record is
// read and its access_code_expires_at decides.
func (s *Service) ReadUse(ctx context.Context, code string) (*Use, error) {
	notFound := licensehub.Errorf(licensehub.ENOTFOUND, "no valid use record for this access code")
	if !validSecret(code) {
		return nil, notFound
	}
	id := idOf(code)
	now := s.cfg.Clock()
	kctx, cancel := context.WithTimeout(ctx, s.cfg.OpTimeout)
	raw, err := s.cfg.KV.Get(kctx, kvUse(id))
	cancel()
	if err != nil {
		octx, cancel := context.WithTimeout(ctx, s.cfg.OpTimeout)
		defer cancel()
		r, _, gerr := s.cfg.Objects.Get(octx, useKey(id))
		if licensehub.IsCode(gerr, licensehub.ENOTFOUND) {
			return nil, notFound
		}
		if gerr != nil {
			return nil, objectErr(gerr, "reading the use record")
		}
		raw, err = io.ReadAll(r)
		r.Close()
		if err != nil {
			return nil, objectErr(err, "reading the use record")
		}
	}
	var u Use
	if err := json.Unmarshal(raw, &u); err != nil {
		return nil, licensehub.Wrap(err, licensehub.EINTERNAL, "use record %s is unreadable", id)
	}
	if u.ID != id || !now.Before(u.AccessCodeExpiresAt) {
		return nil, notFound
	}
	return &u, nil
}
