package license

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/ident"
	"github.com/licensehub/licensehub/signing"
)

// StatusSource answers a license's current status from the library. It
// returns StatusUnknown (and no error) for an identifier it does not hold.
type StatusSource interface {
	Status(ctx context.Context, identifier string) (Status, error)
}

// Check results.
const (
	Pass    = "pass"
	Fail    = "fail"
	Unknown = "unknown"
)

// Verdicts. Indeterminate means every check that could be made passed but
// the current status is unknown (offline, or a license from elsewhere).
const (
	VerdictValid         = "valid"
	VerdictInvalid       = "invalid"
	VerdictIndeterminate = "indeterminate"
)

// Check is one step of a verification.
type Check struct {
	Name   string `json:"check"`
	Result string `json:"result"`
	Rule   string `json:"rule,omitempty"` // stable reason of a failure
	Detail string `json:"detail,omitempty"`
}

// Verdict is the outcome of verifying a signed license document.
type Verdict struct {
	Verdict    string  `json:"verdict"`
	Identifier string  `json:"identifier,omitempty"`
	KeyID      string  `json:"kid,omitempty"`
	Authority  string  `json:"authority,omitempty"`
	SignedAt   string  `json:"signed_at,omitempty"`
	Status     string  `json:"status"`
	Checks     []Check `json:"checks"`
}

// Verifier checks signed license documents: signature, key, issuing
// authority, identifier, validity period and, when it has a library,
// current status. It works offline with an exported key bundle.
type Verifier struct {
	Keys   signing.KeySource
	Status StatusSource // nil: status is unknown
	Now    func() time.Time
}

// Verify parses raw and checks it. A document that cannot be parsed is an
// error (EMALFORMED, for a 400); anything that parses gets a verdict.
func (v *Verifier) Verify(ctx context.Context, raw []byte) (*Verdict, error) {
	doc, err := signing.ParseDocument(raw)
	if err != nil {
		return nil, err
	}
	var lic License
	dec := json.NewDecoder(bytes.NewReader(doc.Body))
	if err := dec.Decode(&lic); err != nil {
		return nil, licensehub.FieldError(licensehub.EMALFORMED, "body", "license body does not fit the license schema: %v", err)
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	vd := &Verdict{Identifier: lic.Identifier, KeyID: doc.Signature.KeyID, SignedAt: doc.Signature.SignedAt,
		Status: StatusUnknown.Name()}
	add := func(name string, err error, passDetail string) bool {
		c := Check{Name: name, Result: Pass, Detail: passDetail}
		if err != nil {
			c.Result, c.Rule, c.Detail = Fail, ruleOf(err), licensehub.Message(err)
		}
		vd.Checks = append(vd.Checks, c)
		return err == nil
	}

	key, sigErr := signing.VerifySignature(doc, v.Keys)
	keyKnown := !licensehub.IsCode(sigErr, licensehub.EKEYNOTFOUND)
	if keyKnown {
		add("signature", sigErr, "SM2 signature over the canonical document verifies")
	} else {
		vd.Checks = append(vd.Checks, Check{Name: "signature", Result: Unknown, Rule: "key_unknown",
			Detail: "cannot check: key " + doc.Signature.KeyID + " is not known"})
	}

	signedAt, _ := doc.SignedTime() // ParseDocument checked it
	if keyKnown {
		vd.Authority = key.Authority
		add("key", key.CheckAt(signedAt), fmt.Sprintf("key %s (%s) was usable at %s", key.KeyID, key.State, doc.Signature.SignedAt))
		add("authority", authorityMatches(&lic, key), "signed by the key of the issuing authority "+key.Authority)
	} else {
		vd.Checks = append(vd.Checks,
			Check{Name: "key", Result: Fail, Rule: "key_unknown",
				Detail: "key " + doc.Signature.KeyID + " is in neither the registry nor the bundle"},
			Check{Name: "authority", Result: Unknown, Detail: "cannot check: the key is not known"})
	}

	id, idErr := ident.Parse(lic.Identifier)
	if idErr == nil && (id.IssuerCode != lic.Issuer.Code || id.TypeCode != lic.TypeCode) {
		idErr = &licensehub.Error{Code: licensehub.EINVALID, Message: "identifier's type or issuer code differs from the body's",
			Details: map[string]any{"rule": "identifier_mismatch"}}
	}
	add("identifier", idErr, "GB/T 36904 identifier with a correct check character")

	at := now()
	reason, detail := lic.ValidityAt(at)
	c := Check{Name: "validity", Result: Pass, Detail: detail}
	if reason != "" {
		c.Result, c.Rule = Fail, reason
	}
	vd.Checks = append(vd.Checks, c)

	vd.Checks = append(vd.Checks, v.statusCheck(ctx, lic.Identifier, vd))

	vd.Verdict = VerdictValid
	for _, c := range vd.Checks {
		switch {
		case c.Result == Fail || c.Name == "signature" && c.Result != Pass:
			vd.Verdict = VerdictInvalid
			return vd, nil
		case c.Result == Unknown:
			vd.Verdict = VerdictIndeterminate
		}
	}
	return vd, nil
}

func (v *Verifier) statusCheck(ctx context.Context, identifier string, vd *Verdict) Check {
	c := Check{Name: "status", Result: Unknown, Detail: "no license library to ask (offline verification, or a hub without one)"}
	if v.Status == nil {
		return c
	}
	st, err := v.Status.Status(ctx, identifier)
	switch {
	case err != nil:
		c.Detail = "the license library could not be asked: " + licensehub.Message(err)
	case st == StatusUnknown:
		c.Detail = "the license is not in this hub's library"
	case st == StatusValid:
		c.Result, c.Detail = Pass, "current status: valid"
	default:
		c.Result, c.Rule, c.Detail = Fail, st.Name(), "current status: "+st.Name()+" ("+string(st)+")"
	}
	if err == nil {
		vd.Status = st.Name()
	}
	return c
}

// authorityMatches: a key may only sign for its own authority, so one
// authority's key cannot vouch for another's licenses.
func authorityMatches(lic *License, key signing.KeyInfo) error {
	if lic.Issuer.Code != key.Authority {
		return &licensehub.Error{Code: licensehub.ESIGINVALID,
			Message: fmt.Sprintf("license names issuer %s but was signed with a key of %s", lic.Issuer.Code, key.Authority),
			Details: map[string]any{"rule": "authority_mismatch"}}
	}
	return nil
}

func ruleOf(err error) string {
	var e *licensehub.Error
	if errors.As(err, &e) {
		if r, ok := e.Details["rule"].(string); ok {
			return r
		}
		return e.Code
	}
	return licensehub.EINTERNAL
}
