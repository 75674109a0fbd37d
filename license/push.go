package license

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/ident"
	"github.com/licensehub/licensehub/signing"
	"github.com/licensehub/licensehub/signing/jcs"
)

// MaxAttachmentSize bounds a pushed attachment.
const MaxAttachmentSize = 32 << 20

// prepared is a validated push, signed and ready to store.
type prepared struct {
	lic     License
	id      ident.Identifier
	serial  string
	digest  string
	op      string // new, renew, change
	doc     []byte // signed document, canonical
	signed  time.Time
	attach  *AttachmentData
	attHex  string
	natural string // KV key of the natural key
	// initial is the status the license is stored with: StatusValid, or
	// StatusExpired for a historic license the catalog lets the stock
	// conversion record.
	initial Status
}

// serialOf makes the identifier's serial from a license number: upper
// case, every character outside [0-9A-Z] removed.
func serialOf(number string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= '0' && r <= '9' || r >= 'A' && r <= 'Z':
			return r
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		}
		return -1
	}, number)
}

func invalid(field, format string, args ...any) error {
	return licensehub.FieldError(licensehub.EINVALID, field, format, args...)
}

func parseDate(field, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, invalidRule(field, RuleRequired, nil, "required (YYYY-MM-DD)")
	}
	t, err := time.ParseInLocation(DateLayout, s, CST)
	if err != nil || t.Format(DateLayout) != s {
		return time.Time{}, invalidRule(field, RuleDate, nil, "%q is not a date (YYYY-MM-DD)", clip(s))
	}
	return t, nil
}

// prepare runs step a (validation), b (digest) and the signing of step f:
// everything that can fail for a reason other than a backend, before
// anything is written.
func (l *Library) prepare(ctx context.Context, req *PushRequest, version int, previous, op string, now time.Time) (*prepared, error) {
	p := &prepared{op: op}
	lic := &p.lic

	// a. validation, in request order so the first error is the first field.
	v, ok := l.cfg.Catalog.Type(req.TypeCode)
	if req.TypeCode == "" {
		return nil, invalid("type_code", "required")
	}
	if !ok || v == nil {
		return nil, invalid("type_code", "license type %q is not in the catalog", clip(req.TypeCode))
	}
	pol := policyOf(v)
	// Text rules for everything that goes into the signed body, then the
	// issuer against the authority registry (which may fill its name).
	if err := checkText(req); err != nil {
		return nil, err
	}
	if err := l.checkAuthority(req); err != nil {
		return nil, err
	}
	if strings.TrimSpace(req.Issuer.Name) == "" {
		return nil, invalid("issuer.name", "required")
	}
	if err := ident.ValidateCreditCode(req.Issuer.Code); err != nil {
		return nil, ident.WithField(err, "issuer.code")
	}
	if n := len(req.Number); n < 1 || n > ident.MaxSerialLen {
		return nil, invalid("number", "license number must be 1..%d characters, got %d", ident.MaxSerialLen, n)
	}
	for i := 0; i < len(req.Number); i++ {
		c := req.Number[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c == '-') {
			return nil, invalid("number", "license number may hold only 0-9, A-Z, a-z and '-'; character %d is not one", i+1)
		}
	}
	p.serial = serialOf(req.Number)
	if p.serial == "" {
		return nil, invalid("number", "license number has no letter or digit")
	}
	if strings.TrimSpace(req.Holder.Name) == "" {
		return nil, invalid("holder.name", "required")
	}
	if err := ident.ValidateHolderCode(req.Holder.CodeType, req.Holder.Code); err != nil {
		field := "holder.code"
		if ident.Rule(err) == ident.RuleHolderCodeType {
			field = "holder.code_type"
		}
		return nil, ident.WithField(err, field)
	}
	// Dates: real, plausible and in order (the type's policy).
	dd, err := l.checkDates(req, pol, now)
	if err != nil {
		return nil, err
	}
	until := dd.until
	p.initial = dd.initial
	if len(req.AreaCode) != 6 || strings.Trim(req.AreaCode, "0123456789") != "" {
		return nil, invalid("area_code", "area code must be 6 digits (GB/T 2260)")
	}
	if req.Matter != nil {
		if req.Matter.Code == "" {
			return nil, invalid("matter.code", "required when matter is given")
		}
		if req.Matter.Name == "" {
			return nil, invalid("matter.name", "required when matter is given")
		}
	}
	if a := req.Attachment; a != nil {
		switch {
		case len(a.Data) == 0:
			return nil, invalid("attachment.data", "empty attachment")
		case len(a.Data) > MaxAttachmentSize:
			return nil, invalid("attachment.data", "attachment is %d bytes, more than %d", len(a.Data), MaxAttachmentSize)
		case a.MediaType == "" || (licensehub.PutOptions{ContentType: a.MediaType}).Validate() != nil:
			return nil, invalid("attachment.media_type", "a media type such as application/pdf is required")
		}
		p.attach = a
		p.attHex = sm3Hex(a.Data)
		lic.Attachment = &Attachment{SM3: p.attHex, Size: int64(len(a.Data)), MediaType: a.MediaType}
	}

	p.id, err = ident.New(req.TypeCode, req.Issuer.Code, p.serial, version)
	if err != nil {
		field := "type_code"
		switch ident.Rule(err) {
		case ident.RuleIssuerCode:
			field = "issuer.code"
		case ident.RuleSerial:
			field = "number"
		case ident.RuleVersion:
			field = "version"
		}
		return nil, ident.WithField(err, field)
	}
	lic.Identifier = p.id.String()
	lic.TypeCode = req.TypeCode
	lic.TypeName = req.TypeName
	if lic.TypeName == "" && l.cfg.TypeName != nil {
		lic.TypeName = l.cfg.TypeName(req.TypeCode)
	}
	lic.Name = req.Name
	if lic.Name == "" {
		lic.Name = lic.TypeName
	}
	if lic.Name == "" {
		return nil, invalid("name", "required: the catalog gives no name for this type")
	}
	lic.Number = req.Number
	lic.Version = fmt.Sprintf("%03d", version)
	lic.Issuer = req.Issuer
	lic.IssueDate, lic.ValidFrom, lic.ValidUntil = req.IssueDate, req.ValidFrom, until
	lic.Holder = req.Holder
	lic.AreaCode = req.AreaCode
	lic.Matter = req.Matter
	lic.Previous = previous
	lic.Fields = req.Fields
	if pv := req.Provenance; pv != nil {
		if pv.Kind != ProvenanceStock && pv.Kind != ProvenanceProvince {
			return nil, invalid("provenance.kind", "provenance kind %q is not %s or %s", clip(pv.Kind), ProvenanceStock, ProvenanceProvince)
		}
		if pv.SourceLine < 0 {
			return nil, invalid("provenance.source_line", "a line number is positive")
		}
		cp := *pv
		lic.Provenance = &cp
	}
	if err := v.Validate(lic); err != nil {
		var e *licensehub.Error
		if !errors.As(err, &e) {
			return nil, licensehub.Wrap(err, licensehub.EINVALID, "license does not fit its catalog entry")
		}
		return nil, err
	}
	p.natural = naturalKV(lic.TypeCode, lic.Issuer.Code, p.serial)

	// b. digest of the content as sent (app and idempotency key excluded).
	content := *req
	content.App, content.IdempotencyKey, content.Attachment = "", "", nil
	raw, err := json.Marshal(struct {
		PushRequest
		Attachment *Attachment `json:"attachment,omitempty"`
		Previous   string      `json:"previous,omitempty"`
		Op         string      `json:"op,omitempty"`
		Provenance *Provenance `json:"provenance,omitempty"`
	}{content, lic.Attachment, previous, op, lic.Provenance})
	if err != nil {
		return nil, invalid("fields", "not representable as JSON: %v", err)
	}
	canon, err := jcs.Canonicalize(raw)
	if err != nil {
		return nil, invalid("fields", "not representable as JSON: %v", err)
	}
	p.digest = sm3Hex(canon)

	// f (signing part): the authority's active key; no key is EKEYNOTFOUND
	// before anything is written.
	body, err := json.Marshal(lic)
	if err != nil {
		return nil, invalid("fields", "not representable as JSON: %v", err)
	}
	signer, err := l.cfg.Signers.SignerFor(lic.Issuer.Code, now)
	if err != nil {
		var e *licensehub.Error
		if errors.As(err, &e) && e.Field == "" {
			e2 := *e
			e2.Field = "issuer.code"
			return nil, &e2
		}
		return nil, err
	}
	doc, err := signing.Sign(ctx, signer, body, now)
	if err != nil {
		return nil, bodyFieldError(err)
	}
	p.doc, err = doc.Marshal()
	if err != nil {
		return nil, bodyFieldError(err)
	}
	p.signed, _ = doc.SignedTime()
	return p, nil
}

// bodyFieldError maps a signing error on the body ("body.fields.x") to the
// request path ("fields.x"), as EINVALID.
func bodyFieldError(err error) error {
	var e *licensehub.Error
	if !errors.As(err, &e) {
		return err
	}
	if e.Code != licensehub.EINVALID && e.Code != licensehub.EMALFORMED {
		return err
	}
	e2 := *e
	e2.Code = licensehub.EINVALID
	e2.Field = strings.TrimPrefix(strings.TrimPrefix(e.Field, "body"), ".")
	if e2.Field == "" {
		e2.Field = "fields"
	}
	return &e2
}

type idemRecord struct {
	Digest  string `json:"digest"`
	Natural string `json:"natural"` // type:authority:serial (the claim)
	App     string `json:"app,omitempty"`
	At      string `json:"at"`
}

// checkIdempotency is step c: the key's record, create-only; a key met
// again must carry the same content.
func (l *Library) checkIdempotency(ctx context.Context, req *PushRequest, p *prepared, now time.Time) error {
	if req.IdempotencyKey == "" {
		return nil
	}
	key := idempotencyKey(req.App, req.IdempotencyKey)
	rec, _ := json.Marshal(idemRecord{Digest: p.digest, Natural: strings.TrimPrefix(p.natural, kvNatural),
		App: req.App, At: now.UTC().Format(signing.SignedAtLayout)})
	err := l.createObject(ctx, key, rec, docContentType, nil)
	if !isCode(err, licensehub.ECONFLICT) {
		return err
	}
	raw, _, err := l.getObject(ctx, key)
	if err != nil {
		return err
	}
	var old idemRecord
	if err := json.Unmarshal(raw, &old); err != nil {
		return licensehub.Wrap(err, licensehub.EINTERNAL, "idempotency record %s is unreadable", key)
	}
	if old.Digest != p.digest {
		return &licensehub.Error{Code: licensehub.ECONFLICT, Field: "Idempotency-Key",
			Message: "idempotency key reused with different content",
			Details: map[string]any{"reason": "idempotency_key_reused"}}
	}
	return nil
}

// Push validates, signs, stores and indexes a newly issued license; see
// doc.go for the write order and why it is consistent.
func (l *Library) Push(ctx context.Context, req PushRequest) (*PushResult, error) {
	now := l.cfg.Clock()
	p, err := l.prepare(ctx, &req, 1, "", OpNew, now)
	if err != nil {
		return nil, err
	}
	return l.store(ctx, &req, p, now)
}

// store runs the writes of a push (c to h).
func (l *Library) store(ctx context.Context, req *PushRequest, p *prepared, now time.Time) (*PushResult, error) {
	// c and e are independent: the attachment is content-addressed, so an
	// orphan one is harmless, and it must exist before the license that
	// names it.
	err := firstErr(
		func() error { return l.checkIdempotency(ctx, req, p, now) },
		func() error {
			if p.attach == nil {
				return nil
			}
			err := l.createObject(ctx, attachmentsPrefix+p.attHex, p.attach.Data, p.attach.MediaType, nil)
			if isCode(err, licensehub.ECONFLICT) {
				return nil // same bytes already stored
			}
			return err
		})
	if err != nil {
		return nil, err
	}

	// d + f: the license object is the claim. Its key is a function of the
	// natural key (type, authority, serial, version), so the create-only
	// write both arbitrates concurrent pushes and stores the record, in one
	// atomic step.
	id := p.id.String()
	meta := map[string]string{metaDigest: p.digest, metaOp: p.op}
	if p.initial == StatusExpired {
		// A historic license: expired from its very first write, so that
		// no reader ever sees it valid.
		meta[metaInitial] = string(StatusExpired)
	}
	created, raw, info, err := l.createLicense(ctx, id, p.doc, meta)
	if isCode(err, licensehub.ETIMEOUT) {
		// The request ended during the write: it may have landed.
		return nil, outcomeUnknown(err, unknownLicense)
	}
	if err != nil {
		return nil, err
	}
	doc := p.doc
	if !created {
		if info.Metadata[metaDigest] != p.digest {
			what := "the same license number with other content"
			if p.op != OpNew {
				what = "another " + p.op + " of the same version with other content"
			}
			return nil, &licensehub.Error{Code: licensehub.ECONFLICT, Field: "number",
				Message: "license " + id + " already exists: " + what,
				Details: map[string]any{"identifier": id, "reason": "natural_key_conflict"}}
		}
		doc = raw
		// A conditional PUT whose response was lost and that minio-go
		// retried reports a conflict although it won: the stored bytes are
		// then ours (signatures are randomised, so nobody else's match).
		created = bytes.Equal(raw, p.doc)
	}
	// g. index and exchange event; on a retry they are re-run, every step
	// being idempotent, unless the index says they completed.
	if !created {
		if e, err := l.kvGetEntry(ctx, id); err == nil && e != nil {
			return &PushResult{Identifier: id, Document: doc}, nil
		}
	}
	lic := p.lic
	if !created {
		if d, err := signing.ParseDocument(doc); err == nil {
			_ = json.Unmarshal(d.Body, &lic)
			p.signed, _ = d.SignedTime()
		}
	}
	initial := p.initial
	if !created {
		initial = initialStatus(info.Metadata)
	}
	if err := l.indexNew(ctx, &lic, p.serial, p.op, p.signed, initial, initial, 0, ""); err != nil {
		return nil, outcomeUnknown(err, unknownLicense)
	}
	return &PushResult{Identifier: id, Document: doc, Created: created}, nil
}

// indexNew is step g for a license object that exists: holder set,
// natural key, expiry set and the exchange event (outbox object, then
// stream) concurrently, then lic:id last, so that lic:id present means
// every other step completed. initial is the status the object was
// stored with (its event carries it), st the current one.
func (l *Library) indexNew(ctx context.Context, lic *License, serial, op string, signed time.Time, initial, st Status, seq int, supersededBy string) error {
	id := lic.Identifier
	parsed, err := ident.Parse(id)
	if err != nil {
		return licensehub.Wrap(err, licensehub.EINTERNAL, "stored license has a bad identifier")
	}
	err = firstErr(
		func() error {
			return l.kvDo(ctx, func(c context.Context) error { return l.cfg.KV.SAdd(c, kvHolder+lic.Holder.Code, id) })
		},
		func() error { return l.setNatural(ctx, naturalKV(lic.TypeCode, lic.Issuer.Code, serial), parsed) },
		func() error {
			score, ok := expiryScore(lic.ValidUntil)
			if !ok || !(st == StatusValid || st == StatusSuspended) {
				return nil
			}
			return l.kvDo(ctx, func(c context.Context) error { return l.cfg.KV.ZAdd(c, kvExpiry, score, id) })
		},
		func() error { return l.emit(ctx, signed, id, op, 0, licenseEvent(lic, op, signed, initial)) })
	if err != nil {
		return err
	}
	return l.kvSetEntry(ctx, id, &indexEntry{Type: lic.TypeCode, Authority: lic.Issuer.Code, Number: lic.Number,
		Serial: serial, Version: parsed.Version, Status: st, StatusSeq: seq, Previous: lic.Previous,
		SupersededBy: supersededBy, ValidUntil: lic.ValidUntil})
}

// licenseEvent is the outbox event of a license or version (op new,
// renew or change; seq 0). A license stored with a status other than
// valid (05 on a historic license, see metaInitial) carries it as
// initial_status, so that the exchange tells the province what the hub
// reads from the first write; its status changes, if any, start from it.
func licenseEvent(lic *License, op string, signed time.Time, initial Status) map[string]any {
	ev := map[string]any{
		"op": op, "identifier": lic.Identifier, "type_code": lic.TypeCode, "authority": lic.Issuer.Code,
		"number": lic.Number, "version": lic.Version, "previous": lic.Previous,
		"object": licenseKey(lic.Identifier), "at": signed.UTC().Format(signing.SignedAtLayout),
	}
	if initial != "" && initial != StatusValid {
		ev["initial_status"] = initial
	}
	return ev
}

// setNatural points the natural key at id unless it already names a later
// version.
func (l *Library) setNatural(ctx context.Context, key string, id ident.Identifier) error {
	return l.kvDo(ctx, func(c context.Context) error {
		ok, err := l.cfg.KV.SetNX(c, key, []byte(id.String()), 0)
		if err != nil || ok {
			return err
		}
		cur, err := l.cfg.KV.Get(c, key)
		if err != nil && !isCode(err, licensehub.ENOTFOUND) {
			return err
		}
		if old, perr := ident.Parse(string(cur)); perr == nil && old.Version >= id.Version {
			return nil
		}
		return l.cfg.KV.Set(c, key, []byte(id.String()), 0)
	})
}

// expiryScore is the end of validity (the day after valid_until, 00:00 in
// Beijing) in unix seconds; false for long-term.
func expiryScore(validUntil string) (float64, bool) {
	if validUntil == LongTerm {
		return 0, false
	}
	t, err := time.ParseInLocation(DateLayout, validUntil, CST)
	if err != nil {
		return 0, false
	}
	return float64(t.AddDate(0, 0, 1).Unix()), true
}

// Check validates req exactly as Push would (catalog, holder code, dates,
// number, the authority's signing key) and returns the identifier it
// would get, writing nothing: a dry run of Push.
func (l *Library) Check(ctx context.Context, req PushRequest) (string, error) {
	p, err := l.prepare(ctx, &req, 1, "", OpNew, l.cfg.Clock())
	if err != nil {
		return "", err
	}
	return p.id.String(), nil
}

// Holds reports whether the library holds a license of typeCode issued by
// authority under number (any content, any later version), by its first
// version's object: the natural key a Push would conflict with. It reads
// only.
func (l *Library) Holds(ctx context.Context, typeCode, authority, number string) (string, bool, error) {
	id, err := ident.New(typeCode, authority, serialOf(number), 1)
	if err != nil {
		return "", false, err
	}
	_, err = l.headObject(ctx, licenseKey(id.String()))
	switch {
	case err == nil:
		return id.String(), true, nil
	case isCode(err, licensehub.ENOTFOUND):
		return id.String(), false, nil
	}
	return "", false, err
}

// clip shortens a value echoed in a message (licensehub.Clip).
func clip(s string) string { return licensehub.Clip(s, 40) }
