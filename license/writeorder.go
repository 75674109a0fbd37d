// # The license library (Library)
//
// Library keeps the city's licenses in the object store (the system of
// record) and indexes them in the KV, which only ever holds what Reindex
// can rebuild. Several hub instances may share one object store and one
// KV: every decision that must be taken once (which push makes a license,
// which change is the n-th status change) is a create-only object write.
//
// Object store layout:
//
//	licenses/<identifier>.json            signed license document (create-only); metadata digest, op[, initial-status]
//	status/<identifier>/<seq %06d>.json   signed status record {identifier, seq, from, to, op, reason, app, at, superseded_by}
//	idempotency/<app>/<hex SM3 of key>.json  {digest, natural, app, at} (create-only)
//	attachments/sm3/<hex SM3>             attachment bytes, content-addressed (create-only)
//	outbox/<yyyymmddThhmmssZ>-<identifier>-<op>[-<seq>].json  exchange event (create-only)
//	exchange/inbound/held/<identifier>/<seq %06d>.json  province status change waiting for its predecessors (create-only; removed once applied)
//
// Foreign licenses (issued elsewhere in the province, Import): the same
// licenses/<identifier>.json, holding the document as its own authority
// signed it, with metadata foreign=province, foreign-source (sender) and
// foreign-event (event ID) besides digest and op (and initial-status "05"
// when the province sent a historic license already expired); their status records
// status/<identifier>/<seq>.json hold the province-signed exchange
// envelope (body type licensehub.exchange.event; verify against the
// province's key) and are written only by ApplyForeignStatus, in seq
// order. They are indexed like local licenses (holder set, natural key,
// lic:id last) but emit no outbox event and get no lic:expiry entry (the
// province sends their expiry); ChangeStatus and NewVersion refuse them
// (ECONFLICT, reason foreign_license).
//
// KV layout (all rebuildable):
//
//	lic:id:<identifier>                     {type, authority, number, serial, version, status, status_seq, previous, superseded_by, valid_until}
//	lic:holder:<holder code>                set of identifiers
//	lic:natural:<type>:<authority>:<serial> latest identifier of that license
//	lic:expiry                              sorted set, score = end of validity (unix s)
//	lic:sweeper                             sweeper lock (SetNX + TTL)
//	lic:pending:<identifier>                seq of a status change being written (TTL 24 h)
//	exchange:outbox                         stream {object, identifier, op} driving delivery
//
// # Push: the write order
//
//  1. Validate (text rules of package signable, catalog with its face-field
//     bindings, holder code, dates and their plausibility, number), compute the content
//     digest (SM3 of the canonical request without app and key), get the
//     authority's signer and sign. Nothing is written before this passes,
//     so a rejected push leaves nothing behind.
//  2. Concurrently: the idempotency record (create-only; a conflict with
//     another digest is ECONFLICT "idempotency key reused with different
//     content") and the attachment (content-addressed; an orphan one is
//     harmless).
//  3. licenses/<identifier>.json, create-only. The identifier is a function
//     of the natural key (type, authority, serial = normalised number,
//     version 001), so this one write is both the natural-key claim and the
//     record: it arbitrates concurrent pushes (fifty identical pushes make
//     one object; the others read it, find the same digest and answer
//     Created=false) and there is no state "claimed but not written" to
//     repair. A conflict with another digest is ECONFLICT naming the
//     existing identifier.
//  4. Index, only once the object exists, concurrently: SAdd
//     lic:holder:<code>, lic:natural, ZAdd lic:expiry, and the exchange
//     event (outbox object create-only, then XAdd to the stream); then
//     lic:id last, so its presence means step 4 completed.
//  5. Answer with the stored bytes (201 when step 3 created the object).
//
// Why it holds: every index entry is written after the object it points at,
// so no entry can point at nothing (an entry whose object was removed by
// hand is dropped by ByHolder). A failure after step 3 leaves a stored
// license whose index is incomplete; Push then returns OUTCOME_UNKNOWN
// (EOUTCOMEUNKNOWN, 503: "the license may have been stored; retry with the
// same Idempotency-Key", see outcome.go), so a 2xx always means stored and
// indexed, and each of these completes it: the
// client's retry (step 3 conflicts with the same digest, lic:id is absent,
// step 4 runs again; every step is idempotent and the outbox key is
// deterministic, so the event is not duplicated), Get or Status on the
// identifier (they read the object when lic:id is missing and repair), and
// Reindex. With the object store down, Push fails at step 2 or 3 with
// OBJECT_STORE_UNAVAILABLE (EOBJECTSTORE)
// and has written at most an idempotency record (a retry with the same
// content passes it) or an attachment.
//
// # Status changes and versions
//
// The current status is the last status record (when there is none:
// valid, or the license object's initial-status metadata, "05" on a
// historic license the stock conversion recorded already expired, see
// Policy.RecordExpired, or a foreign one the province sent so; it is
// written with the object, in the same create, so such a license never
// reads as valid): derivable from the object store alone. The license's
// exchange event carries it (initial_status), so the province reads 05
// from the same event that brings the license, whichever delivery of it
// (retry, replay, reconciliation) it applies. A change reads the last
// record, checks the transition (Transition; terminal states allow
// nothing), sets lic:pending:<id>, writes the next seq create-only (a
// conflict is a concurrent change: re-read and re-check), then updates
// lic:id and lic:expiry, records the event and clears the marker (compare
// and delete). lic:id carries the seq its status came from. Status and
// ByHolder answer from lic:id alone (no object store call: a warm lookup
// is served from the KV) unless the marker is there; then one HEAD checks
// whether the next record exists, so a change whose index update was
// lost (a writer that died) is noticed and repaired. A change that
// answered has updated lic:id, so the very next read sees it.
//
// NewVersion writes the next version's license object first (create-only:
// one winner per version), indexes it (lic:natural then names it), and
// then appends to the predecessor a status record to StatusOther (99) with
// superseded_by: the predecessor reads as "superseded" and links to its
// successor. If a crash falls between the two, Get on the predecessor
// (which probes for a later version) and Reindex add the missing record.
//
// The sweeper (ExpireDue, RunSweeper) takes candidates from lic:expiry
// under the lic:sweeper lock; the create-only status record makes a double
// expiry impossible even without the lock.
package license
