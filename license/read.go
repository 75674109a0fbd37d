package license

import (
	"context"
	"encoding/json"
	"sort"
	"sync"
	"time"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/ident"
	"github.com/licensehub/licensehub/signing"
)

// stored is a license as the object store holds it.
type stored struct {
	lic    License
	doc    []byte
	op     string
	signed time.Time
	// foreign is the provenance of a foreign license (object metadata);
	// nil for a license of this city.
	foreign *Provenance
	// initial is the status before any status record (metaInitial).
	initial Status
}

func parseID(id string) (ident.Identifier, error) {
	p, err := ident.Parse(id)
	if err != nil {
		return p, ident.WithField(err, "identifier")
	}
	return p, nil
}

// loadLicense reads licenses/<id>.json; ELICNOTFOUND when absent.
func (l *Library) loadLicense(ctx context.Context, id string) (*stored, error) {
	raw, info, err := l.getObject(ctx, licenseKey(id))
	if isCode(err, licensehub.ENOTFOUND) {
		return nil, notFound(id)
	}
	if err != nil {
		return nil, err
	}
	return parseStored(raw, info)
}

func parseStored(raw []byte, info licensehub.ObjectInfo) (*stored, error) {
	d, err := signing.ParseDocument(raw)
	if err != nil {
		return nil, licensehub.Wrap(err, licensehub.EINTERNAL, "stored license %s is unreadable", info.Key)
	}
	s := &stored{doc: raw, op: info.Metadata[metaOp], foreign: foreignOf(info.Metadata), initial: initialStatus(info.Metadata)}
	if err := json.Unmarshal(d.Body, &s.lic); err != nil {
		return nil, licensehub.Wrap(err, licensehub.EINTERNAL, "stored license %s has a bad body", info.Key)
	}
	s.signed, _ = d.SignedTime()
	if s.op == "" {
		s.op = OpNew
		if s.lic.Previous != "" {
			s.op = OpChange
		}
	}
	return s, nil
}

// statusRecords lists status/<id>/ and reads the last record (all of them
// when full), in seq order. No records: nil, nil.
func (l *Library) statusRecords(ctx context.Context, id string, full bool) ([]StatusChange, error) {
	var seqs []int
	err := l.listObjects(ctx, statusKeyPrefix(id), func(oi licensehub.ObjectInfo) error {
		if rid, seq, ok := parseStatusKey(oi.Key); ok && rid == id {
			seqs = append(seqs, seq)
		}
		return nil
	})
	if err != nil || len(seqs) == 0 {
		return nil, err
	}
	sort.Ints(seqs)
	if !full {
		seqs = seqs[len(seqs)-1:]
	}
	out := make([]StatusChange, len(seqs))
	errs := make([]error, len(seqs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, seq := range seqs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			rec, err := l.readStatus(ctx, id, seq)
			if err == nil {
				out[i] = *rec
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (l *Library) readStatus(ctx context.Context, id string, seq int) (*StatusChange, error) {
	raw, _, err := l.getObject(ctx, statusKey(id, seq))
	if err != nil {
		return nil, err
	}
	d, err := signing.ParseDocument(raw)
	if err != nil {
		return nil, licensehub.Wrap(err, licensehub.EINTERNAL, "status record %s is unreadable", statusKey(id, seq))
	}
	// A foreign license's records are the province's envelopes (they have
	// a type; the hub's own records do not). Either kind must be about
	// this license and seq.
	var probe struct {
		Type string `json:"type"`
	}
	if json.Unmarshal(d.Body, &probe) == nil && probe.Type == foreignEventType {
		return foreignStatusChange(id, seq, raw)
	}
	var rec StatusChange
	if err := json.Unmarshal(d.Body, &rec); err != nil {
		return nil, licensehub.Wrap(err, licensehub.EINTERNAL, "status record %s has a bad body", statusKey(id, seq))
	}
	if rec.Identifier != id || rec.Seq != seq || rec.Provenance != "" {
		return nil, licensehub.Errorf(licensehub.EINTERNAL, "status record %s is about %s seq %d", statusKey(id, seq), rec.Identifier, rec.Seq)
	}
	rec.Document = raw
	return &rec, nil
}

// current derives the status from the last record (initial when none:
// valid, or expired for a historic license; see stored.initial).
func current(recs []StatusChange, initial Status) (st Status, seq int, supersededBy string) {
	if len(recs) == 0 {
		if initial == "" {
			initial = StatusValid
		}
		return initial, 0, ""
	}
	last := recs[len(recs)-1]
	return last.To, last.Seq, last.SupersededBy
}

func statusName(st Status, supersededBy string) string {
	if st == StatusOther && supersededBy != "" {
		return SupersededDescription
	}
	return st.Name()
}

// Get reads a license with its current status, versions and status
// history from the object store (the index is only repaired from it);
// ELICNOTFOUND when there is none.
func (l *Library) Get(ctx context.Context, identifier string) (*Record, error) {
	pid, err := parseID(identifier)
	if err != nil {
		return nil, err
	}
	var s *stored
	var recs []StatusChange
	err = firstErr(
		func() (err error) { s, err = l.loadLicense(ctx, identifier); return err },
		func() (err error) { recs, err = l.statusRecords(ctx, identifier, true); return err })
	if err != nil {
		return nil, err
	}
	st, seq, by := current(recs, s.initial)
	versions, err := l.versions(ctx, pid)
	if err != nil {
		return nil, err
	}
	if last := versions[len(versions)-1]; last != identifier && by == "" && s.foreign == nil {
		// A later version exists but the supersede record is missing (a
		// crash between the two writes of NewVersion): complete it.
		next, _ := pid.Next()
		if rec, err := l.supersede(ctx, identifier, next.String(), &s.lic); err == nil {
			recs = append(recs, *rec)
			st, seq, by = current(recs, s.initial)
		} else {
			l.log.WarnContext(ctx, "completing a supersede record failed", "identifier", identifier, "err", err)
		}
	}
	if err := l.repairEntry(ctx, s, st, seq, by); err != nil {
		l.log.WarnContext(ctx, "license index repair failed", "identifier", identifier, "err", err)
	}
	r := &Record{Identifier: identifier, Document: s.doc, License: &s.lic, Status: st, Initial: s.initial,
		StatusName: statusName(st, by), Previous: s.lic.Previous, SupersededBy: by,
		Versions: versions, History: recs, Provenance: s.foreign}
	if r.History == nil {
		r.History = []StatusChange{}
	}
	if by != "" {
		r.StatusDescription = SupersededDescription
	}
	return r, nil
}

// repairEntry makes the index agree with the object store for one license:
// the whole index step when lic:id is missing, just lic:id when it is
// stale.
func (l *Library) repairEntry(ctx context.Context, s *stored, st Status, seq int, by string) error {
	id := s.lic.Identifier
	e, err := l.kvGetEntry(ctx, id)
	switch {
	case isCode(err, licensehub.ENOTFOUND) && s.foreign != nil:
		return l.indexForeign(ctx, s, st, seq, by) // no outbound event: it came from the province
	case isCode(err, licensehub.ENOTFOUND):
		return l.indexNew(ctx, &s.lic, serialOf(s.lic.Number), s.op, s.signed, s.initial, st, seq, by)
	case err != nil:
		return err
	case e.StatusSeq == seq && e.Status == st && e.SupersededBy == by:
		return nil
	case e.StatusSeq > seq:
		return nil // a newer change is being written
	}
	e.Status, e.StatusSeq, e.SupersededBy = st, seq, by
	if !(st == StatusValid || st == StatusSuspended) {
		_ = l.kvDo(ctx, func(c context.Context) error { return l.cfg.KV.ZRem(c, kvExpiry, id) })
	}
	return l.kvSetEntry(ctx, id, e)
}

// exists reports whether the license object of id is stored, asking the
// index first.
func (l *Library) exists(ctx context.Context, id string) (bool, error) {
	if _, err := l.kvGetEntry(ctx, id); err == nil {
		return true, nil
	}
	_, err := l.headObject(ctx, licenseKey(id))
	switch {
	case err == nil:
		return true, nil
	case isCode(err, licensehub.ENOTFOUND):
		return false, nil
	}
	return false, err
}

// versions lists every version of pid's license, oldest first: versions
// are made one after the other (NewVersion only extends the latest), so
// they are 001..N; N is found by probing upwards from pid.
func (l *Library) versions(ctx context.Context, pid ident.Identifier) ([]string, error) {
	var out []string
	for v := 1; v <= pid.Version; v++ {
		id, err := ident.New(pid.TypeCode, pid.IssuerCode, pid.Serial, v)
		if err != nil {
			return nil, err
		}
		out = append(out, id.String())
	}
	for next := pid; next.Version < ident.MaxVersion; {
		var err error
		if next, err = next.Next(); err != nil {
			return nil, err
		}
		ok, err := l.exists(ctx, next.String())
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		out = append(out, next.String())
	}
	return out, nil
}

// Versions lists the identifiers of every version of identifier's license,
// oldest first; ELICNOTFOUND when identifier is not stored.
func (l *Library) Versions(ctx context.Context, identifier string) ([]string, error) {
	pid, err := parseID(identifier)
	if err != nil {
		return nil, err
	}
	ok, err := l.exists(ctx, identifier)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, notFound(identifier)
	}
	return l.versions(ctx, pid)
}

// Status is the current status (StatusSource): StatusUnknown with no error
// for an identifier the library does not hold. It answers from the index
// (KV only) unless a status change is pending (lic:pending:<id>, set by
// the writer before its status record and cleared after the index update);
// then one HEAD checks whether the pending record exists, and if it does
// the status is derived from the object store and the index repaired.
func (l *Library) Status(ctx context.Context, identifier string) (Status, error) {
	if _, err := ident.Parse(identifier); err != nil {
		return StatusUnknown, nil
	}
	e, pending, err := l.indexed(ctx, identifier)
	if err == nil && !pending {
		return e.Status, nil
	}
	if err == nil {
		_, herr := l.headObject(ctx, statusKey(identifier, e.StatusSeq+1))
		switch {
		case isCode(herr, licensehub.ENOTFOUND):
			return e.Status, nil
		case herr != nil:
			// The object store cannot be asked: the index is the best
			// knowledge there is.
			l.log.WarnContext(ctx, "status from the index only: object store unavailable", "identifier", identifier, "err", herr)
			return e.Status, nil
		}
	} else if !isCode(err, licensehub.ENOTFOUND) {
		l.log.WarnContext(ctx, "license index unavailable; reading the object store", "identifier", identifier, "err", err)
	}
	s, err := l.loadLicense(ctx, identifier)
	if isCode(err, licensehub.ELICNOTFOUND) {
		return StatusUnknown, nil
	}
	if err != nil {
		return StatusUnknown, err
	}
	recs, err := l.statusRecords(ctx, identifier, false)
	if err != nil {
		return StatusUnknown, err
	}
	st, seq, by := current(recs, s.initial)
	if err := l.repairEntry(ctx, s, st, seq, by); err != nil {
		l.log.WarnContext(ctx, "license index repair failed", "identifier", identifier, "err", err)
	}
	return st, nil
}

// ByHolder lists the licenses held by holderCode (via the index), sorted by
// identifier, each with its status current as Status would answer it. A
// member whose lic:id entry is missing or behind is rebuilt from its
// object; a member whose object is gone is dropped from the set.
func (l *Library) ByHolder(ctx context.Context, holderCode string) ([]Summary, error) {
	if holderCode == "" {
		return nil, invalid("holder_code", "required")
	}
	var ids []string
	if err := l.kvDo(ctx, func(c context.Context) (err error) {
		ids, err = l.cfg.KV.SMembers(c, kvHolder+holderCode)
		return err
	}); err != nil {
		return nil, err
	}
	out := make([]*Summary, len(ids))
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i, id := range ids {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			out[i], errs[i] = l.holderMember(ctx, holderCode, id)
		}()
	}
	wg.Wait()
	res := []Summary{}
	for i := range ids {
		if errs[i] != nil {
			return nil, errs[i]
		}
		if out[i] != nil {
			res = append(res, *out[i])
		}
	}
	sort.Slice(res, func(i, j int) bool { return res[i].Identifier < res[j].Identifier })
	return res, nil
}

func (l *Library) holderMember(ctx context.Context, holderCode, id string) (*Summary, error) {
	e, pending, eerr := l.indexed(ctx, id)
	switch {
	case eerr == nil && !pending:
		s := e.summary(id)
		return &s, nil
	case eerr == nil:
		// Current as Status answers: a pending change is in the index
		// unless its status record exists.
		_, nerr := l.headObject(ctx, statusKey(id, e.StatusSeq+1))
		if nerr == nil {
			break // a change the index has not caught up with: rebuild below
		}
		if !isCode(nerr, licensehub.ENOTFOUND) {
			l.log.WarnContext(ctx, "status from the index only: object store unavailable", "identifier", id, "err", nerr)
		}
		s := e.summary(id)
		return &s, nil
	case !isCode(eerr, licensehub.ENOTFOUND):
		return nil, eerr
	}
	// lic:id is missing, or behind its status records: an interrupted
	// index step, or an object that is gone.
	s, err := l.loadLicense(ctx, id)
	if isCode(err, licensehub.ELICNOTFOUND) {
		// Dangling: the object is gone (or never was). Drop the member.
		l.log.WarnContext(ctx, "dropping index entry without a license object", "identifier", id)
		_ = l.kvDo(ctx, func(c context.Context) error { return l.cfg.KV.SRem(c, kvHolder+holderCode, id) })
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if s.lic.Holder.Code != holderCode {
		_ = l.kvDo(ctx, func(c context.Context) error { return l.cfg.KV.SRem(c, kvHolder+holderCode, id) })
		return nil, nil
	}
	recs, err := l.statusRecords(ctx, id, false)
	if err != nil {
		return nil, err
	}
	st, seq, by := current(recs, s.initial)
	if err := l.repairEntry(ctx, s, st, seq, by); err != nil {
		return nil, err
	}
	pid, _ := ident.Parse(id)
	return &Summary{Identifier: id, TypeCode: s.lic.TypeCode, Authority: s.lic.Issuer.Code,
		Number: s.lic.Number, Version: pid.Version, Status: st, SupersededBy: by}, nil
}
