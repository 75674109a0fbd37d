package exchange

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/signing"
)

// Daily reconciliation: both sides compute, for one UTC day, the count and
// the SM3 (hex) of the sorted distinct event IDs whose event time falls on
// that day, joined by "\n". The hub reads them from the outbox objects
// keyed that day or the next (an event is flushed just after its time).

// DateLayout is the reconciliation date.
const DateLayout = "2006-01-02"

// DayDigest is one side's digest of a day.
type DayDigest struct {
	Date   string   `json:"date"`
	Count  int      `json:"count"`
	Digest string   `json:"digest"`
	IDs    []string `json:"event_ids,omitempty"`
}

// Report is the comparison of the hub's day with the province's.
type Report struct {
	Date     string    `json:"date"`
	Hub      DayDigest `json:"hub"`
	Province DayDigest `json:"province"`
	Equal    bool      `json:"equal"`
	Missing  []string  `json:"missing"` // at the hub, not at the province
	Extra    []string  `json:"extra"`   // at the province, not at the hub
}

// DigestIDs computes a DayDigest over ids (deduplicated, sorted).
func DigestIDs(date string, ids []string) DayDigest {
	set := map[string]bool{}
	for _, id := range ids {
		set[id] = true
	}
	sorted := make([]string, 0, len(set))
	for id := range set {
		sorted = append(sorted, id)
	}
	sort.Strings(sorted)
	return DayDigest{Date: date, Count: len(sorted), Digest: sm3Hex(strings.Join(sorted, "\n")), IDs: sorted}
}

// Reconciler computes the hub's digests and compares them with the
// province's.
type Reconciler struct {
	Objects     licensehub.ObjectStore
	ProvinceURL string     // GET ProvinceURL + "/v1/reconcile?date=D&ids=1"
	Deliverer   *Deliverer // re-sends what the province lacks; nil: no re-sending
	HTTP        *http.Client
	Timeout     time.Duration // per call to the province (10s)
}

func parseDate(date string) (time.Time, error) {
	d, err := time.Parse(DateLayout, date)
	if err != nil {
		return d, licensehub.FieldError(licensehub.EINVALID, "date", "date %q is not YYYY-MM-DD", date)
	}
	return d, nil
}

// dayEvents reads the events of date from the outbox.
func (r *Reconciler) dayEvents(ctx context.Context, date string) (map[string]Pending, error) {
	d, err := parseDate(date)
	if err != nil {
		return nil, err
	}
	out := map[string]Pending{}
	for _, day := range []time.Time{d, d.Add(24 * time.Hour)} {
		keys, err := listKeys(ctx, r.Objects, outboxPrefix+day.Format("20060102"))
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			events, err := readOutbox(ctx, r.Objects, k)
			if licensehub.IsCode(err, licensehub.ENOTFOUND) || licensehub.IsCode(err, licensehub.EMALFORMED) {
				continue
			}
			if err != nil {
				return nil, err
			}
			for _, ev := range events {
				at, err := time.Parse(signing.SignedAtLayout, ev.At)
				if err != nil {
					at, err = time.Parse(time.RFC3339Nano, ev.At)
				}
				if err != nil || at.UTC().Format(DateLayout) != date {
					continue
				}
				if _, ok := out[ev.EventID]; !ok {
					out[ev.EventID] = Pending{Event: ev, Batch: k}
				}
			}
		}
	}
	return out, nil
}

// Digest is the hub's digest of date.
func (r *Reconciler) Digest(ctx context.Context, date string) (DayDigest, error) {
	events, err := r.dayEvents(ctx, date)
	if err != nil {
		return DayDigest{}, err
	}
	ids := make([]string, 0, len(events))
	for id := range events {
		ids = append(ids, id)
	}
	return DigestIDs(date, ids), nil
}

// Compare lists the differences between the hub's and the province's
// digests (both with IDs).
func Compare(hub, province DayDigest) Report {
	rep := Report{Date: hub.Date, Hub: hub, Province: province, Missing: []string{}, Extra: []string{}}
	rep.Equal = hub.Digest == province.Digest && hub.Count == province.Count
	at := map[string]bool{}
	for _, id := range province.IDs {
		at[id] = true
	}
	mine := map[string]bool{}
	for _, id := range hub.IDs {
		mine[id] = true
		if !at[id] {
			rep.Missing = append(rep.Missing, id)
		}
	}
	for _, id := range province.IDs {
		if !mine[id] {
			rep.Extra = append(rep.Extra, id)
		}
	}
	sort.Strings(rep.Extra)
	return rep
}

// Reconcile compares the hub's day with the province's digest.
func (r *Reconciler) Reconcile(ctx context.Context, date string, province DayDigest) (Report, error) {
	hub, err := r.Digest(ctx, date)
	if err != nil {
		return Report{}, err
	}
	return Compare(hub, province), nil
}

// ProvinceDigest asks the province for its digest of date, with IDs.
func (r *Reconciler) ProvinceDigest(ctx context.Context, date string) (DayDigest, error) {
	if _, err := parseDate(date); err != nil {
		return DayDigest{}, err
	}
	if r.ProvinceURL == "" {
		return DayDigest{}, licensehub.FieldError(licensehub.EINVALID, "exchange.province_url", "no province URL configured")
	}
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	hc := r.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	u := strings.TrimRight(r.ProvinceURL, "/") + "/v1/reconcile?" + url.Values{"date": {date}, "ids": {"1"}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return DayDigest{}, licensehub.Wrap(err, licensehub.EINVALID, "exchange: province reconcile URL")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return DayDigest{}, licensehub.Wrap(err, licensehub.EUPSTREAM, "exchange: the province's reconciliation is unreachable")
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return DayDigest{}, licensehub.Wrap(err, licensehub.EUPSTREAM, "exchange: reading the province's reconciliation")
	}
	if resp.StatusCode != http.StatusOK {
		return DayDigest{}, licensehub.Errorf(licensehub.EUPSTREAM, "exchange: the province answered HTTP %d to reconcile", resp.StatusCode)
	}
	var dd DayDigest
	if err := json.Unmarshal(raw, &dd); err != nil || dd.Date != date {
		return DayDigest{}, licensehub.Errorf(licensehub.EUPSTREAMBAD, "exchange: the province's reconciliation answer is not a digest of %s", date)
	}
	return dd, nil
}

// Resend re-delivers the events of date named by ids (those the province
// lacks) through the deliverer; it returns those it could not deliver.
func (r *Reconciler) Resend(ctx context.Context, date string, ids []string) (map[string]string, error) {
	if r.Deliverer == nil {
		return nil, licensehub.Errorf(licensehub.EINVALID, "exchange: re-sending needs a deliverer (exchange.province_url)")
	}
	events, err := r.dayEvents(ctx, date)
	if err != nil {
		return nil, err
	}
	var todo []Pending
	failed := map[string]string{}
	for _, id := range ids {
		if p, ok := events[id]; ok {
			todo = append(todo, p)
		} else {
			failed[id] = "not in the hub's outbox for " + date
		}
	}
	more, err := r.Deliverer.Resend(ctx, todo)
	for id, e := range more {
		failed[id] = e
	}
	return failed, err
}
