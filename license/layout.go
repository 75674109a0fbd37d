package license

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/emmansun/gmsm/sm3"

	"github.com/licensehub/licensehub"
)

// Object store layout (the system of record).
const (
	licensesPrefix    = "licenses/"
	statusPrefix      = "status/"
	outboxPrefix      = "outbox/"
	idempotencyPrefix = "idempotency/"
	attachmentsPrefix = "attachments/sm3/"
)

// KV layout (rebuildable by Reindex).
const (
	kvID      = "lic:id:"      // + identifier → indexEntry JSON
	kvHolder  = "lic:holder:"  // + holder code → set of identifiers
	kvNatural = "lic:natural:" // + type:authority:serial → latest identifier
	kvPending = "lic:pending:" // + identifier → seq of a status record being written (see pendingTTL)
	kvExpiry  = "lic:expiry"   // sorted set: identifier, score = end of validity (unix s)
	kvSweeper = "lic:sweeper"  // sweeper lock
	// OutboxStream is the KV stream of exchange events; each entry's
	// "object" field is the key of the outbox object that records it.
	OutboxStream = "exchange:outbox"
)

// Object metadata on license objects.
const (
	metaDigest = "digest" // hex SM3 of the canonical push content
	metaOp     = "op"     // new, renew or change
	// metaInitial is the status a license object starts with when it is
	// not valid: "05" on a historic license recorded already expired.
	// Absent: valid. Its status records, when any, come after it.
	metaInitial = "initial-status"
)

// initialStatus is the status a license object's metadata starts it
// with (see metaInitial).
func initialStatus(meta map[string]string) Status {
	if Status(meta[metaInitial]) == StatusExpired {
		return StatusExpired
	}
	return StatusValid
}

const docContentType = "application/json"

func licenseKey(id string) string { return licensesPrefix + id + ".json" }

func statusKeyPrefix(id string) string { return statusPrefix + id + "/" }

func statusKey(id string, seq int) string {
	return fmt.Sprintf("%s%s/%06d.json", statusPrefix, id, seq)
}

// parseStatusKey returns the identifier and seq of a status record key.
func parseStatusKey(key string) (string, int, bool) {
	rest, ok := strings.CutPrefix(key, statusPrefix)
	if !ok {
		return "", 0, false
	}
	i := strings.LastIndexByte(rest, '/')
	if i < 0 {
		return "", 0, false
	}
	seq, err := strconv.Atoi(strings.TrimSuffix(rest[i+1:], ".json"))
	if err != nil || seq < 1 {
		return "", 0, false
	}
	return rest[:i], seq, true
}

func naturalKV(typeCode, authority, serial string) string {
	return kvNatural + typeCode + ":" + authority + ":" + serial
}

func idempotencyKey(app, key string) string {
	seg := app
	if seg == "" || licensehub.ValidateObjectKey(seg) != nil || strings.Contains(seg, "/") || len(seg) > 128 {
		seg = "h-" + sm3Hex([]byte(app))
	}
	return idempotencyPrefix + seg + "/" + sm3Hex([]byte(key)) + ".json"
}

func sm3Hex(b []byte) string {
	sum := sm3.Sum(b)
	return hex.EncodeToString(sum[:])
}

// indexEntry is the value of lic:id:<identifier>. It holds no personal
// data: the holder code is only a set key.
type indexEntry struct {
	Type         string `json:"type"`
	Authority    string `json:"authority"`
	Number       string `json:"number"`
	Serial       string `json:"serial"`
	Version      int    `json:"version"`
	Status       Status `json:"status"`
	StatusSeq    int    `json:"status_seq"` // seq of the status record Status comes from (0: none)
	Previous     string `json:"previous,omitempty"`
	SupersededBy string `json:"superseded_by,omitempty"`
	ValidUntil   string `json:"valid_until"`
}

func (e *indexEntry) summary(id string) Summary {
	return Summary{Identifier: id, TypeCode: e.Type, Authority: e.Authority, Number: e.Number,
		Version: e.Version, Status: e.Status, SupersededBy: e.SupersededBy}
}

// call bounds one backend call with the op timeout.
func (l *Library) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, l.cfg.OpTimeout)
}

// objErr turns an object store failure into the error callers see: the
// domain codes (conflict, not found, invalid) pass unchanged; everything
// else is EOBJECTSTORE (503 OBJECT_STORE_UNAVAILABLE).
func objErr(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	switch licensehub.ErrorCode(err) {
	case licensehub.ECONFLICT, licensehub.ENOTFOUND, licensehub.EINVALID, licensehub.EMALFORMED:
		return err
	}
	if ctx.Err() != nil {
		return licensehub.Wrap(err, licensehub.ETIMEOUT, "request ended while the object store was being written or read")
	}
	return &licensehub.Error{Code: licensehub.EOBJECTSTORE, Message: "object store unavailable",
		Details: map[string]any{"backend": "object_store"}, Err: err}
}

// kvErr is objErr for the KV.
func kvErr(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	switch licensehub.ErrorCode(err) {
	case licensehub.ENOTFOUND, licensehub.EINVALID:
		return err
	}
	if ctx.Err() != nil {
		return licensehub.Wrap(err, licensehub.ETIMEOUT, "request ended while the license index was being used")
	}
	return &licensehub.Error{Code: licensehub.EUNAVAILABLE, Message: "license index (KV) unavailable",
		Details: map[string]any{"backend": "kv"}, Err: err}
}

func (l *Library) getObject(ctx context.Context, key string) ([]byte, licensehub.ObjectInfo, error) {
	cctx, cancel := l.call(ctx)
	defer cancel()
	rc, info, err := l.cfg.Objects.Get(cctx, key)
	if err != nil {
		return nil, info, objErr(ctx, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, info, objErr(ctx, err)
	}
	return b, info, nil
}

func (l *Library) headObject(ctx context.Context, key string) (licensehub.ObjectInfo, error) {
	cctx, cancel := l.call(ctx)
	defer cancel()
	info, err := l.cfg.Objects.Head(cctx, key)
	return info, objErr(ctx, err)
}

// createObject writes key create-only; ECONFLICT when it exists.
func (l *Library) createObject(ctx context.Context, key string, data []byte, contentType string, meta map[string]string) error {
	cctx, cancel := l.call(ctx)
	defer cancel()
	_, err := l.cfg.Objects.Create(cctx, key, bytes.NewReader(data), int64(len(data)),
		licensehub.PutOptions{ContentType: contentType, Metadata: meta})
	return objErr(ctx, err)
}

// createLicense writes license id's document create-only. When it exists
// already it returns the stored bytes and their info instead, with
// created false, for the caller to compare.
func (l *Library) createLicense(ctx context.Context, id string, doc []byte, meta map[string]string) (created bool, raw []byte, info licensehub.ObjectInfo, err error) {
	err = l.createObject(ctx, licenseKey(id), doc, docContentType, meta)
	if err == nil || !isCode(err, licensehub.ECONFLICT) {
		return err == nil, nil, info, err
	}
	raw, info, err = l.getObject(ctx, licenseKey(id))
	if isCode(err, licensehub.ENOTFOUND) {
		err = licensehub.Errorf(licensehub.EOBJECTSTORE, "license %s: create conflicted but the object cannot be read", id)
	}
	return false, raw, info, err
}

func (l *Library) listObjects(ctx context.Context, prefix string, fn func(licensehub.ObjectInfo) error) error {
	// A listing may be long (Reindex): it is bounded by ctx, not OpTimeout.
	return objErr(ctx, l.cfg.Objects.List(ctx, prefix, fn))
}

func (l *Library) kvGetEntry(ctx context.Context, id string) (*indexEntry, error) {
	cctx, cancel := l.call(ctx)
	defer cancel()
	b, err := l.cfg.KV.Get(cctx, kvID+id)
	if err != nil {
		return nil, kvErr(ctx, err)
	}
	var e indexEntry
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, licensehub.Wrap(err, licensehub.ENOTFOUND, "index entry of %s is unreadable", id)
	}
	return &e, nil
}

// pendingTTL is how long a status change's pending marker outlives a
// writer that died between its status object and its index update.
// Readers that see the marker check the object store; after it expires,
// an entry still behind its status records is repaired by the next slow
// read or by Reindex.
const pendingTTL = 24 * time.Hour

// indexed reads id's index entry and whether a status change is pending
// (both in one round trip when the KV pipelines concurrent calls).
func (l *Library) indexed(ctx context.Context, id string) (*indexEntry, bool, error) {
	var (
		e          *indexEntry
		eerr, perr error
	)
	_ = firstErr(
		func() error { e, eerr = l.kvGetEntry(ctx, id); return nil },
		func() error {
			perr = l.kvDo(ctx, func(c context.Context) error { _, err := l.cfg.KV.Get(c, kvPending+id); return err })
			return nil
		})
	switch {
	case eerr != nil:
		return nil, false, eerr
	case perr == nil:
		return e, true, nil
	case isCode(perr, licensehub.ENOTFOUND):
		return e, false, nil
	}
	return e, true, nil // cannot tell: check the object store
}

func (l *Library) kvSetEntry(ctx context.Context, id string, e *indexEntry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	cctx, cancel := l.call(ctx)
	defer cancel()
	return kvErr(ctx, l.cfg.KV.Set(cctx, kvID+id, b, 0))
}

// kvDo runs one KV call with the op timeout.
func (l *Library) kvDo(ctx context.Context, f func(ctx context.Context) error) error {
	cctx, cancel := l.call(ctx)
	defer cancel()
	return kvErr(ctx, f(cctx))
}

// firstErr runs fns concurrently and returns the first error.
func firstErr(fns ...func() error) error {
	if len(fns) == 1 {
		return fns[0]()
	}
	errs := make(chan error, len(fns))
	for _, f := range fns {
		go func() { errs <- f() }()
	}
	var first error
	for range fns {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

func isCode(err error, code string) bool { return licensehub.IsCode(err, code) }

func notFound(id string) error {
	return &licensehub.Error{Code: licensehub.ELICNOTFOUND, Message: "no license " + id, Field: "identifier"}
}
