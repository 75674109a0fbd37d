// Package exchange is the hub's exchange with the provincial platform
// (全省通办): every new license, new version, status change and catalog
// change goes out exactly once per event ID as an SM2-signed envelope;
// licenses issued elsewhere and their changes come in the same way; a
// pull feed and a daily reconciliation let both sides prove they agree.
//
// An envelope is a signing.Document (the hub's usual SM2-SM3 signed JSON,
// see signing/VERIFY.md) whose body is an Event. The sender signs with
// its own key (the hub with its authority's key; the province with its
// key); the receiver verifies against the sender's published key bundle
// (signing.Bundle).
package exchange

import (
	"context"
	"encoding/json"
	"time"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/signing"
)

// EventType is the body type of every envelope.
const EventType = "licensehub.exchange.event"

// Ops carried by events: the license library's (new, renew, change for a
// license or version; suspend, restore, cancel, withdraw, revoke, expire,
// supersede for a status change) and OpCatalog.
const OpCatalog = "catalog"

// Event is an envelope's body.
type Event struct {
	Type   string `json:"type"`   // EventType
	Sender string `json:"sender"` // the sender's authority code (the hub's, or the province's)
	// ID is stable across retries and deliveries: "<identifier>/<op>" for
	// a license or version, "<identifier>/<op>/<seq>" for a status change,
	// "catalog/<digest>" for a catalog change. Receivers apply an ID once.
	ID string `json:"event_id"`
	// License is the identifier the event is about ("" for catalog).
	License string `json:"license,omitempty"`
	// Seq orders the events of one license: 0 for the license (or
	// version) itself, the status record's seq (1, 2, ...) for a status
	// change. A receiver applies a license's status changes in Seq order,
	// whatever order they arrive in.
	Seq  int    `json:"seq"`
	Op   string `json:"op"`
	Time string `json:"time"` // when it happened (signing.SignedAtLayout, UTC)
	// Meta is the change-feed record (domain.md section 7).
	Meta *Meta `json:"meta,omitempty"`
	// Status is set for status changes.
	Status *StatusChange `json:"status,omitempty"`
	// InitialStatus is set on a license or version (new, renew, change)
	// stored with a status other than 01 valid: "05" for a historic
	// license recorded already expired (the stock conversion of a
	// register's lapsed licenses). Absent means 01. The license's status
	// changes (Seq 1, 2, ...) start from it; a receiver records the
	// license with it, not as valid.
	InitialStatus string `json:"initial_status,omitempty"`
	// Document is the signed license document (new, renew, change).
	Document json.RawMessage `json:"document,omitempty"`
	// Catalog is the catalog digest and the type codes (catalog changes).
	Catalog *CatalogChange `json:"catalog,omitempty"`
	// Batch is the sender's batch the event was recorded in (the hub's
	// outbox object key), for the batch/operation/time triple.
	Batch string `json:"batch,omitempty"`
}

// Meta is the license metadata the provincial change feed carries.
type Meta struct {
	HolderName     string `json:"holder_name"`
	HolderCode     string `json:"holder_code"`
	HolderCodeType string `json:"holder_code_type"`
	Name           string `json:"name"`
	Number         string `json:"number"`
	TypeCode       string `json:"type_code"`
	IssueDate      string `json:"issue_date"`
	Department     string `json:"department"`      // issuing authority's name
	DepartmentCode string `json:"department_code"` // and its unified social credit code
	AreaCode       string `json:"area_code"`
	Version        string `json:"version,omitempty"`
	Previous       string `json:"previous,omitempty"`
}

// StatusChange is a status event's detail.
type StatusChange struct {
	From         string `json:"from"`
	To           string `json:"to"`
	Reason       string `json:"reason,omitempty"`
	SupersededBy string `json:"superseded_by,omitempty"`
}

// CatalogChange is a catalog event's detail.
type CatalogChange struct {
	Digest string   `json:"digest"` // hex SM3 of the canonical catalog
	Types  []string `json:"types"`  // the type codes it defines
}

// Seal signs ev as an envelope with signer at now: the bytes to send.
func Seal(ctx context.Context, signer signing.Signer, ev *Event, now time.Time) ([]byte, error) {
	ev.Type = EventType
	body, err := json.Marshal(ev)
	if err != nil {
		return nil, licensehub.Wrap(err, licensehub.EINVALID, "exchange: encoding event %s", ev.ID)
	}
	d, err := signing.Sign(ctx, signer, body, now)
	if err != nil {
		return nil, err
	}
	return d.Marshal()
}

// Open parses an envelope, verifies its signature against keys (the
// sender's bundle) and returns its event: EMALFORMED for bytes that are
// not an envelope, ESIGINVALID for a signature that does not verify or a
// key that is not the sender's.
func Open(raw []byte, keys signing.KeySource) (*Event, error) {
	d, err := signing.ParseDocument(raw)
	if err != nil {
		return nil, err
	}
	info, err := signing.VerifySignature(d, keys)
	if err != nil {
		return nil, err
	}
	var ev Event
	if err := json.Unmarshal(d.Body, &ev); err != nil {
		return nil, licensehub.Wrap(err, licensehub.EMALFORMED, "exchange: envelope body is not an event")
	}
	switch {
	case ev.Type != EventType:
		return nil, licensehub.FieldError(licensehub.EMALFORMED, "body.type", "envelope type %q is not %s", ev.Type, EventType)
	case ev.ID == "":
		return nil, licensehub.FieldError(licensehub.EMALFORMED, "body.event_id", "an event has an ID")
	case ev.Sender != info.Authority:
		return nil, licensehub.FieldError(licensehub.ESIGINVALID, "signature.kid",
			"envelope from %q is signed with a key of %q", ev.Sender, info.Authority)
	}
	return &ev, nil
}
