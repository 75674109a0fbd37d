// Package audit is the hub's tamper-evident audit trail: every call that
// reads, creates or changes a license, consent or key leaves a Record,
// durable before the response is sent; records are chained with SM3 and
// sealed into segments in the object store, each ending with a checkpoint
// signed with SM2 by the hub's own key; Verify re-reads the segments and
// names the first record that was modified, deleted, inserted or
// reordered.
//
// # Flow
//
// Trail.Append validates a Record and appends its JSON to a Journal,
// returning once the journal has it durably. With a LocalJournal
// (OpenLocalJournal: a FileJournal, fsync with group commit, in a
// directory that also keeps the instance's stable ID), Append first gives
// the record the instance's ID and its next number (Record.Seq: 1, 2, …
// per instance, in local journal order) and fsyncs it there; then, with
// Redis, it adds it to the stream shared by all hub instances
// (NewStreamJournal, one total order across instances). Embedded, the
// local journal is the only one. The record is durable once the local
// journal has it: a failed publication, or a Redis that restarts empty,
// loses nothing. Trail.Run, on every instance, reconciles after sealing
// (Reconcile): it reads which numbered records are sealed
// (SealedSeqsKey), trims its local journal of them, publishes again the
// ones not sealed when they may be lost (at start, when the KV's
// EpochKey changed, after a failed publication, or when a later record
// was sealed without them twice in a row), and writes its signed
// AckedMark (AckedKey: acknowledged up to n). The sealer seals a
// numbered record once however often it was published. Verify reports a
// numbered record missing from the sealed trail (below one sealed, or up
// to the AckedMark) for longer than GapGrace as a KindGap problem naming
// the instance and the numbers, and one sealed twice as KindDuplicate.
// Records without a number (older hubs) are verified as before.
//
// Trail.Seal, run every SealInterval by Trail.Run on
// whichever instance holds the sealer lock (a lease on the KV key
// "audit:sealer", package lease, renewed while it seals), reads the
// journal after the last
// sealed entry, chains the records and writes the next segment
// create-only, then head.json, then trims the journal. Appenders never
// wait for the sealer.
//
// Crash safety: a segment is written create-only before head.json, and
// the journal is trimmed only after head.json. A sealer that stops after
// the segment leaves head.json one segment behind; the next Seal (on any
// instance) finds the segment, checks that it continues the chain, adopts
// it and reads the journal after the segment's last journal ID, so nothing
// is sealed twice or skipped. Two sealers that race (a lease lost mid-seal)
// compete for the same segment key; the loser adopts the winner's segment.
// The chain cannot fork: a segment number is written once.
//
// # Objects
//
//	audit/segments/000000000001.jsonl   segments, numbered from 1 (%012d)
//	audit/head.json                     where the sealed chain ends
//
// A segment is JSON lines. Each record line is, in RFC 8785 canonical
// form (members sorted, no spaces),
//
//	{"hash":"<hex SM3>","prev":"<hex SM3>","record":{…},"seq":<n>}
//
// where seq numbers records 1, 2, … across all segments, prev is the hash
// of record seq-1 (64 zeros for record 1) and record is the Record's JSON,
// canonical. The last line is the checkpoint: a signing.Document (the
// hub's usual SM2-SM3 signed document, see signing/VERIFY.md) whose body
// is a Checkpoint:
//
//	{"authority":"<hub authority code>","count":N,"first_journal_id":"…","first_seq":a,
//	 "last_hash":"<hash of record b>","last_journal_id":"…","last_seq":b,
//	 "prev_hash":"<hash of record a-1>","sealed_at":"2026-11-26T08:00:00.123Z",
//	 "sealed_by":"<instance>","segment":n,"type":"licensehub.audit.checkpoint"}
//
// A record with a number has "instance_id" and "instance_seq" members.
// audit/acked/<instance>.json is a signing.Document whose body is an
// AckedMark; audit/sealed-seqs.json (unsigned, a cache rebuilt from the
// segments) lists the numbers sealed per instance as ranges.
//
// head.json is a signing.Document too, whose body is a HeadState: type
// "licensehub.audit.head", authority, segment (last sealed, 0 for none),
// last_seq, last_hash, last_journal_id and updated_at.
//
// # Hashing
//
//	hash_seq = SM3( prev_bytes ‖ {"prev":"<prev hex>","record":<canonical record>,"seq":<seq>} )
//
// where prev_bytes are the 32 bytes of the previous hash (hash_{seq-1};
// 32 zero bytes for seq 1) and the JSON is the record line without its
// hash member, in canonical form. The hash covers the record, its
// position and its predecessor, so editing, deleting, inserting or
// moving a line breaks the chain at that line; rewriting the rest of a
// segment with recomputed hashes still ends at another hash than the one
// its signed checkpoint names. Lines are stored canonical, so for records
// whose strings hold no control characters `jq -c 'del(.hash)'` of a line
// reproduces the hashed JSON, and an SM3 tool recomputes the hash.
//
// # Holder codes
//
// A record never holds a holder code: HolderMasked is logging.MaskID of it
// (110********02X) and HolderHash the hex HMAC-SM3 of it (upper-cased,
// trimmed) under the configured holder key, which lets Query and
// HolderUsage find a holder's records without storing the code.
package audit
