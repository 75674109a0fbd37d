package license

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/ident"
	"github.com/licensehub/licensehub/signing"
)

// Foreign licenses: licenses issued elsewhere in the province, received
// from the provincial platform (exchange.Inbound). They are stored as the
// issuing authority signed them (the hub cannot and does not re-sign
// them), read-only: their status changes come only from the province, as
// province-signed envelopes stored as status records. See writeorder.go.

// Object metadata on foreign license objects (the document's body is the
// foreign authority's, so the provenance lives beside it).
const (
	metaForeign      = "foreign"        // ProvenanceProvince
	metaForeignSrc   = "foreign-source" // the sending platform's authority code
	metaForeignEvent = "foreign-event"  // the exchange event that brought it
)

// heldPrefix holds foreign status changes that arrived before their
// predecessors: exchange/inbound/held/<identifier>/<seq %06d>.json, each
// the province-signed envelope (create-only), removed once applied.
const heldPrefix = "exchange/inbound/held/"

// foreignEventType is the body type of an exchange envelope
// (exchange.EventType; the license package cannot import exchange).
const foreignEventType = "licensehub.exchange.event"

// Outcomes of ApplyForeignStatus.
const (
	ForeignApplied   = "applied"   // stored as the next status record (and any held successors after it)
	ForeignHeld      = "held"      // a predecessor is missing: kept until the gap fills
	ForeignDuplicate = "duplicate" // that seq is already applied: nothing changed
)

// ForeignStatus is a province status change as the exchange carries it.
type ForeignStatus struct {
	Op           string `json:"op"`
	From         Status `json:"from"`
	To           Status `json:"to"`
	Reason       string `json:"reason,omitempty"`
	SupersededBy string `json:"superseded_by,omitempty"`
	At           string `json:"at"` // the event's time
}

func heldKeyPrefix(id string) string { return heldPrefix + id + "/" }

func heldKey(id string, seq int) string { return fmt.Sprintf("%s%s/%06d.json", heldPrefix, id, seq) }

// foreignOf reads the provenance of a foreign license object from its
// metadata; nil for a local license.
func foreignOf(meta map[string]string) *Provenance {
	if meta[metaForeign] == "" {
		return nil
	}
	return &Provenance{Kind: meta[metaForeign], Source: meta[metaForeignSrc], EventID: meta[metaForeignEvent]}
}

func foreignLicenseError(id string) error {
	return &licensehub.Error{Code: licensehub.ECONFLICT, Field: "identifier",
		Message: "license " + id + " was issued elsewhere in the province and is read-only here: its changes come from the provincial platform",
		Details: map[string]any{"reason": "foreign_license", "identifier": id}}
}

// metaSafe reports whether s can be an object metadata value (printable
// ASCII, bounded).
func metaSafe(s string) bool {
	if len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// Import stores a license issued elsewhere in the province: doc is the
// signed license document as its authority signed it (kept as is, in
// canonical form), prov says where it came from (Kind ProvenanceProvince).
// It is stored create-only under licenses/<identifier>.json with the
// provenance in the object metadata and indexed like a local license
// (holder set, natural key, lic:id last), without an outbound exchange
// event (it came from the province) and without an expiry entry (the
// province sends its expiry). The same document again is a no-op
// (Created false); an identifier held by a local license, or by a foreign
// one with another document or another initial status, is ECONFLICT.
// initial is the status the province sent the license with ("" or
// StatusValid, or StatusExpired for a historic license recorded already
// expired): stored in the same create as the object (metaInitial), so the
// license reads it from its first write, as a local historic one does;
// its status changes start from it. Status changes held for this license
// (they arrived before it) are applied afterwards.
func (l *Library) Import(ctx context.Context, doc []byte, prov Provenance, initial Status) (*PushResult, error) {
	if prov.Kind != ProvenanceProvince {
		return nil, invalid("provenance.kind", "a foreign license's provenance is %s, not %q", ProvenanceProvince, clip(prov.Kind))
	}
	switch initial {
	case "":
		initial = StatusValid
	case StatusValid, StatusExpired:
	default:
		return nil, invalid("initial_status", "a license is received valid (%s) or already expired (%s), not with status %q",
			StatusValid, StatusExpired, clip(string(initial)))
	}
	if !metaSafe(prov.Source) || !metaSafe(prov.EventID) {
		return nil, invalid("provenance", "source and event ID must be printable ASCII, at most 256 bytes")
	}
	d, err := signing.ParseDocument(doc)
	if err != nil {
		return nil, err
	}
	canon, err := d.Marshal()
	if err != nil {
		return nil, err
	}
	signed, _ := d.SignedTime()
	var lic License
	if err := json.Unmarshal(d.Body, &lic); err != nil {
		return nil, licensehub.Wrap(err, licensehub.EMALFORMED, "document body is not a license")
	}
	pid, err := checkForeignBody(&lic)
	if err != nil {
		return nil, err
	}
	id := pid.String()
	op := OpNew
	if lic.Previous != "" {
		op = OpChange
	}
	digest := sm3Hex(canon)
	meta := map[string]string{metaDigest: digest, metaOp: op, metaForeign: prov.Kind}
	if prov.Source != "" {
		meta[metaForeignSrc] = prov.Source
	}
	if prov.EventID != "" {
		meta[metaForeignEvent] = prov.EventID
	}
	if initial != StatusValid {
		meta[metaInitial] = string(initial)
	}
	created, raw, info, err := l.createLicense(ctx, id, canon, meta)
	if err != nil {
		return nil, err
	}
	if !created {
		switch {
		case foreignOf(info.Metadata) == nil:
			return nil, &licensehub.Error{Code: licensehub.ECONFLICT, Field: "identifier",
				Message: "license " + id + " is a license of this city; a foreign license cannot replace it",
				Details: map[string]any{"reason": "local_license", "identifier": id}}
		case !bytes.Equal(raw, canon) && info.Metadata[metaDigest] != digest:
			return nil, &licensehub.Error{Code: licensehub.ECONFLICT, Field: "identifier",
				Message: "foreign license " + id + " is already stored with another document",
				Details: map[string]any{"reason": "foreign_document_conflict", "identifier": id}}
		case initialStatus(info.Metadata) != initial:
			return nil, &licensehub.Error{Code: licensehub.ECONFLICT, Field: "initial_status",
				Message: "foreign license " + id + " is already stored with initial status " + string(initialStatus(info.Metadata)) +
					", not " + string(initial),
				Details: map[string]any{"reason": "foreign_document_conflict", "identifier": id}}
		}
		canon = raw
		if e, kerr := l.kvGetEntry(ctx, id); kerr == nil && e != nil {
			if err := l.drainHeld(ctx, id); err != nil {
				return nil, err
			}
			return &PushResult{Identifier: id, Document: raw}, nil
		}
	}
	s := &stored{lic: lic, doc: canon, op: op, signed: signed, foreign: &prov, initial: initial}
	recs, err := l.statusRecords(ctx, id, false)
	if err != nil {
		return nil, err
	}
	st, seq, by := current(recs, initial)
	if err := l.indexForeign(ctx, s, st, seq, by); err != nil {
		return nil, err
	}
	if err := l.drainHeld(ctx, id); err != nil {
		return nil, err
	}
	return &PushResult{Identifier: id, Document: canon, Created: created}, nil
}

// checkForeignBody checks what the hub relies on in a foreign license: an
// identifier that agrees with the type, issuer, number and version in the
// body, a holder, and readable dates. The face fields are the issuing
// authority's business (its catalog may differ from the city's).
func checkForeignBody(lic *License) (ident.Identifier, error) {
	f := func(field, format string, args ...any) error {
		return licensehub.FieldError(licensehub.EINVALID, "document.body."+field, format, args...)
	}
	pid, err := ident.Parse(lic.Identifier)
	if err != nil {
		return pid, ident.WithField(err, "document.body.identifier")
	}
	switch {
	case lic.TypeCode != pid.TypeCode:
		return pid, f("type_code", "type code %q does not match identifier %s", clip(lic.TypeCode), pid)
	case lic.Issuer.Code != pid.IssuerCode:
		return pid, f("issuer.code", "issuer %q does not match identifier %s", clip(lic.Issuer.Code), pid)
	case serialOf(lic.Number) != pid.Serial:
		return pid, f("number", "license number %q does not match identifier %s", clip(lic.Number), pid)
	case lic.Version != fmt.Sprintf("%03d", pid.Version):
		return pid, f("version", "version %q does not match identifier %s", clip(lic.Version), pid)
	case strings.TrimSpace(lic.Name) == "":
		return pid, f("name", "required")
	case strings.TrimSpace(lic.Holder.Name) == "":
		return pid, f("holder.name", "required")
	}
	if err := ident.ValidateHolderCode(lic.Holder.CodeType, lic.Holder.Code); err != nil {
		return pid, ident.WithField(err, "document.body.holder.code")
	}
	if _, err := parseDate("valid_from", lic.ValidFrom); err != nil {
		return pid, f("valid_from", "%q is not a date (YYYY-MM-DD)", clip(lic.ValidFrom))
	}
	if lic.ValidUntil != LongTerm {
		if _, err := parseDate("valid_until", lic.ValidUntil); err != nil {
			return pid, f("valid_until", "%q is neither a date (YYYY-MM-DD) nor %q", clip(lic.ValidUntil), LongTerm)
		}
	}
	if lic.Previous != "" {
		prev, err := ident.Parse(lic.Previous)
		if err != nil || prev.TypeCode != pid.TypeCode || prev.IssuerCode != pid.IssuerCode || prev.Serial != pid.Serial || prev.Version >= pid.Version {
			return pid, f("previous", "previous %q is not an earlier version of %s", clip(lic.Previous), pid)
		}
	}
	return pid, nil
}

// indexForeign is indexNew for a foreign license: holder set and natural
// key, then lic:id last; no exchange event (the license came from the
// province) and no expiry entry (the province sends the expiry).
func (l *Library) indexForeign(ctx context.Context, s *stored, st Status, seq int, by string) error {
	lic := &s.lic
	id := lic.Identifier
	parsed, err := ident.Parse(id)
	if err != nil {
		return licensehub.Wrap(err, licensehub.EINTERNAL, "stored license has a bad identifier")
	}
	err = firstErr(
		func() error {
			return l.kvDo(ctx, func(c context.Context) error { return l.cfg.KV.SAdd(c, kvHolder+lic.Holder.Code, id) })
		},
		func() error {
			return l.setNatural(ctx, naturalKV(lic.TypeCode, lic.Issuer.Code, parsed.Serial), parsed)
		})
	if err != nil {
		return err
	}
	return l.kvSetEntry(ctx, id, &indexEntry{Type: lic.TypeCode, Authority: lic.Issuer.Code, Number: lic.Number,
		Serial: parsed.Serial, Version: parsed.Version, Status: st, StatusSeq: seq, Previous: lic.Previous,
		SupersededBy: by, ValidUntil: lic.ValidUntil})
}

// ApplyForeignStatus applies the province's status change seq of the
// foreign license id; envelope is the province-signed envelope that
// carried it (already verified by the caller), stored as the status
// record status/<id>/<seq>.json so that the record stays verifiable
// against the province's key. Changes apply in seq order whatever order
// they arrive in: seq == last+1 is applied (then any held successors),
// seq > last+1 is held (exchange/inbound/held/<id>/<seq>.json,
// create-only) until the gap fills, seq <= last is a duplicate and changes
// nothing. A change for a license not received yet is held too (Import
// applies it). A local license is ECONFLICT (reason local_license).
func (l *Library) ApplyForeignStatus(ctx context.Context, id string, seq int, change ForeignStatus, envelope []byte) (string, error) {
	if _, err := parseID(id); err != nil {
		return "", err
	}
	if seq < 1 {
		return "", invalid("seq", "a status change has seq 1 or more, got %d", seq)
	}
	if err := checkForeignStatus(&change); err != nil {
		return "", err
	}
	fs, err := parseForeignRecord(envelope)
	if err != nil {
		return "", err
	}
	if fs.License != id || fs.Seq != seq || fs.Op != change.Op || fs.Status.To != change.To {
		return "", invalid("envelope", "the envelope does not carry this change (%s seq %d %s)", id, seq, clip(change.Op))
	}
	s, err := l.loadLicense(ctx, id)
	switch {
	case isCode(err, licensehub.ELICNOTFOUND):
		if err := l.hold(ctx, id, seq, envelope); err != nil {
			return "", err
		}
		return ForeignHeld, l.drainHeld(ctx, id) // the license may have arrived meanwhile
	case err != nil:
		return "", err
	case s.foreign == nil:
		return "", &licensehub.Error{Code: licensehub.ECONFLICT, Field: "license",
			Message: "license " + id + " is a license of this city; the province cannot change its status",
			Details: map[string]any{"reason": "local_license", "identifier": id}}
	}
	outcome, err := l.applyForeign(ctx, s, seq, envelope)
	if err != nil || outcome == ForeignDuplicate {
		return outcome, err
	}
	// After an application the held successors may be next; after a hold
	// too, in case the gap was filled (by another instance) between the
	// read and the hold.
	return outcome, l.drainHeld(ctx, id)
}

func checkForeignStatus(c *ForeignStatus) error {
	known := c.Op == OpSupersede
	for _, o := range StatusOps {
		known = known || o == c.Op
	}
	switch {
	case !known:
		return invalid("op", "operation %q is not a status change", clip(c.Op))
	case c.To == "" || c.To == StatusUnknown || c.To.Name() == "unknown":
		return invalid("status.to", "status %q is not a status code", clip(string(c.To)))
	case len(c.Reason) > 1024:
		return invalid("status.reason", "at most 1024 bytes")
	}
	return nil
}

// applyForeign writes seq as the next status record if it is next.
func (l *Library) applyForeign(ctx context.Context, s *stored, seq int, envelope []byte) (string, error) {
	id := s.lic.Identifier
	for attempt := 0; attempt < 16; attempt++ {
		recs, err := l.statusRecords(ctx, id, false)
		if err != nil {
			return "", err
		}
		cur, last, by := current(recs, s.initial)
		switch {
		case seq <= last:
			// Complete the index of an application that was interrupted.
			if err := l.repairEntry(ctx, s, cur, last, by); err != nil {
				return "", err
			}
			return ForeignDuplicate, nil
		case seq > last+1:
			return ForeignHeld, l.hold(ctx, id, seq, envelope)
		}
		rec, err := foreignStatusChange(id, seq, envelope)
		if err != nil {
			return "", err
		}
		marker := []byte(strconv.Itoa(seq))
		if err := l.kvDo(ctx, func(c context.Context) error { return l.cfg.KV.Set(c, kvPending+id, marker, pendingTTL) }); err != nil {
			return "", err
		}
		err = l.createObject(ctx, statusKey(id, seq), envelope, docContentType, map[string]string{metaForeign: ProvenanceProvince})
		if isCode(err, licensehub.ECONFLICT) {
			continue // another instance applied it: re-read (a duplicate now)
		}
		if err != nil {
			return "", err
		}
		if from := cur; rec.From != "" && rec.From != from {
			l.log.WarnContext(ctx, "province status change does not start from the status held here",
				"identifier", id, "seq", seq, "from", rec.From, "held", from)
		}
		err = firstErr(
			func() error { return l.repairEntry(ctx, s, rec.To, rec.Seq, rec.SupersededBy) },
			func() error {
				return l.kvDo(ctx, func(c context.Context) error { return l.cfg.KV.ZRem(c, kvExpiry, id) })
			})
		if err != nil {
			return "", err
		}
		_ = l.kvDo(ctx, func(c context.Context) error {
			_, err := l.cfg.KV.CompareAndDelete(c, kvPending+id, marker)
			return err
		})
		return ForeignApplied, nil
	}
	return "", licensehub.Errorf(licensehub.ECONFLICT, "license %s is changing too often concurrently; try again", id)
}

// hold keeps a change whose predecessors have not arrived.
func (l *Library) hold(ctx context.Context, id string, seq int, envelope []byte) error {
	err := l.createObject(ctx, heldKey(id, seq), envelope, docContentType, nil)
	if isCode(err, licensehub.ECONFLICT) {
		return nil // already held
	}
	return err
}

// drainHeld applies the held changes that have become next, in seq order,
// and removes the held objects that are applied (or were duplicates).
func (l *Library) drainHeld(ctx context.Context, id string) error {
	var seqs []int
	err := l.listObjects(ctx, heldKeyPrefix(id), func(oi licensehub.ObjectInfo) error {
		name := strings.TrimSuffix(strings.TrimPrefix(oi.Key, heldKeyPrefix(id)), ".json")
		if n, err := strconv.Atoi(name); err == nil && n > 0 && heldKey(id, n) == oi.Key {
			seqs = append(seqs, n)
		}
		return nil
	})
	if err != nil || len(seqs) == 0 {
		return err
	}
	s, err := l.loadLicense(ctx, id)
	if isCode(err, licensehub.ELICNOTFOUND) {
		return nil // held until the license arrives (Import drains)
	}
	if err != nil {
		return err
	}
	if s.foreign == nil {
		return nil
	}
	sort.Ints(seqs)
	for _, seq := range seqs {
		raw, _, err := l.getObject(ctx, heldKey(id, seq))
		if isCode(err, licensehub.ENOTFOUND) {
			continue // drained concurrently
		}
		if err != nil {
			return err
		}
		outcome, err := l.applyForeign(ctx, s, seq, raw)
		if err != nil {
			return err
		}
		if outcome == ForeignHeld {
			return nil // still a gap before this one
		}
		// Applied or already applied: the status record is the truth now.
		cctx, cancel := l.call(ctx)
		derr := l.cfg.Objects.Delete(cctx, heldKey(id, seq))
		cancel()
		if derr != nil && !isCode(derr, licensehub.ENOTFOUND) {
			l.log.WarnContext(ctx, "removing an applied held status change failed", "identifier", id, "seq", seq, "err", derr)
		}
	}
	return nil
}

// foreignRecord is the part of an exchange envelope's body (exchange.Event)
// a status record needs.
type foreignRecord struct {
	Type    string `json:"type"`
	Sender  string `json:"sender"`
	ID      string `json:"event_id"`
	License string `json:"license"`
	Seq     int    `json:"seq"`
	Op      string `json:"op"`
	Time    string `json:"time"`
	Status  *struct {
		From         Status `json:"from"`
		To           Status `json:"to"`
		Reason       string `json:"reason,omitempty"`
		SupersededBy string `json:"superseded_by,omitempty"`
	} `json:"status"`
}

func parseForeignRecord(raw []byte) (*foreignRecord, error) {
	d, err := signing.ParseDocument(raw)
	if err != nil {
		return nil, err
	}
	var fr foreignRecord
	if err := json.Unmarshal(d.Body, &fr); err != nil {
		return nil, licensehub.Wrap(err, licensehub.EMALFORMED, "envelope body is not an exchange event")
	}
	if fr.Type != foreignEventType || fr.Status == nil {
		return nil, licensehub.FieldError(licensehub.EMALFORMED, "body.status", "envelope is not a status change event")
	}
	return &fr, nil
}

// foreignStatusChange reads a stored (or held) province envelope as the
// status record of id at seq.
func foreignStatusChange(id string, seq int, raw []byte) (*StatusChange, error) {
	fr, err := parseForeignRecord(raw)
	if err != nil {
		return nil, licensehub.Wrap(err, licensehub.EINTERNAL, "foreign status record %s is unreadable", statusKey(id, seq))
	}
	if fr.License != id || fr.Seq != seq {
		return nil, licensehub.Errorf(licensehub.EINTERNAL, "foreign status record %s is about %s seq %d", statusKey(id, seq), fr.License, fr.Seq)
	}
	at := fr.Time
	if t, err := time.Parse(time.RFC3339, at); err == nil {
		at = t.UTC().Format(signing.SignedAtLayout)
	}
	return &StatusChange{Identifier: id, Seq: seq, From: fr.Status.From, To: fr.Status.To, Op: fr.Op,
		Reason: fr.Status.Reason, App: fr.Sender, At: at, SupersededBy: fr.Status.SupersededBy,
		Provenance: ProvenanceProvince, EventID: fr.ID, Document: raw}, nil
}
