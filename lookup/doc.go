// Package lookup is the once-only lookup (一次不跑, 免提交): approval
// systems get the licenses and certificates a service matter needs, with
// the applicant's authorisation or an operator's duty, minimised to the
// fields the matter may see, each use recorded as an annotated copy
// (加注件).
//
// It holds the domain only: the service matters (configs/matters.yaml,
// [LoadMatters]), the applicant's consents ([Consents]), the two forms of
// authorisation ([Authorization]), the lookups ([Service.ByHolder],
// [Service.Get], [Service.Materials]) and the use records
// ([Service.ReadUse]). It talks to storage only through
// licensehub.ObjectStore and licensehub.KV; the HTTP edge lives in api/.
//
// # Decisions
//
//   - Minimisation vs. signatures. A signed document cannot be cut down to
//     the matter's fields without breaking its signature. A lookup
//     therefore returns a minimised, unsigned [View] (identifier, type,
//     current status, validity, and only the face fields the matter may
//     see: the others are absent, not blank) plus an access code. The full
//     signed document is kept in the use record (加注件) and read with the
//     access code ([Service.ReadUse]) while it is valid, so the signature
//     can still be verified by whoever needs the original; that read is a
//     separate act. [Service.Materials] likewise returns views and access
//     codes (for found materials only).
//   - Status is never cached: every view's status comes from the library
//     at the time of the lookup (its index, checked with one HEAD that no
//     later status record exists), so a status change that returned is
//     visible to the very next lookup on every instance. Only the
//     immutable part of a license (its signed document, create-only in the
//     library; a new version has its own identifier) is cached, in memory
//     per instance.
//   - Consent revocation: the object store's marker is the record; the KV
//     holds each consent's state (active or revoked), read on every use.
//     Revoke writes the marker, then the state, and answers only when
//     both are written; a state rebuilt after a KV miss fills an absent
//     key only (SetNX), so it never undoes a revocation that raced it.
//   - Consent tokens are 32 random bytes, base64url; only their SM3 digest
//     is stored. The consent ID is the first 16 bytes of that digest in
//     hex, so a token finds its consent without an index and the ID
//     reveals nothing about the token.
//   - Access codes are 32 random bytes, base64url (43 characters). The
//     use record is kept in the KV under its use ID, the hex of the first
//     16 bytes of SM3(code), never under the code itself, for the code's
//     TTL. Its durable record is the lookup's audit record, which names
//     every use (ID, license identifier or certificate number, expiry);
//     a license's signed document is read back from the library, a
//     certificate's is kept with the use record.
//   - Certificate parameters come from the applicant (holder code, holder
//     name), from a fixed value in matters.yaml ("=2025"), or from an input
//     the approval system gives ("input:legal_representative_id"); a
//     certificate whose input is missing, or refused by the kind's
//     parameter checks, is reported as needs_input. A verifying
//     certificate (identity: does the record match the given name?) whose
//     record does not match is reported as mismatch and listed as
//     missing: the certificate attests the mismatch only, so it is
//     neither shown nor recorded as a use.
package lookup
