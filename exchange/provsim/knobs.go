package provsim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Knobs inject failures into POST /v1/events. Rates are shares of
// requests, 0 to 1, drawn in this order: down (every /v1/ request's
// connection closed), delay (+ a random 0..Jitter), error (503), throttle
// (429 with Retry-After: 1), drop. A dropped request is closed without an
// answer: half of the drops before the event is applied (the hub must
// resend), half after (the hub loses the answer and resends an event the
// simulator already has: a duplicate).
type Knobs struct {
	DropRate     float64       `json:"-"`
	Delay        time.Duration `json:"-"`
	Jitter       time.Duration `json:"-"`
	ErrorRate    float64       `json:"-"`
	ThrottleRate float64       `json:"-"`
	// DownFrom and DownUntil bound an outage: every /v1/ request that
	// arrives in [DownFrom, DownUntil) has its connection closed. A zero
	// DownFrom means "from now"; a zero DownUntil means no outage.
	DownFrom  time.Time `json:"-"`
	DownUntil time.Time `json:"-"`
}

// Down reports whether the simulator refuses requests at t.
func (k Knobs) Down(t time.Time) bool {
	return !k.DownUntil.IsZero() && !t.Before(k.DownFrom) && t.Before(k.DownUntil)
}

// Validate checks the ranges of the knobs.
func (k Knobs) Validate() error {
	for _, r := range []struct {
		name string
		v    float64
	}{{"drop_rate", k.DropRate}, {"error_rate", k.ErrorRate}, {"throttle_rate", k.ThrottleRate}} {
		if r.v < 0 || r.v > 1 {
			return fmt.Errorf("%s %v is not between 0 and 1", r.name, r.v)
		}
	}
	if k.Delay < 0 || k.Jitter < 0 {
		return errors.New("delay and jitter must not be negative")
	}
	if !k.DownUntil.IsZero() && k.DownUntil.Before(k.DownFrom) {
		return errors.New("down_until is before the outage's start")
	}
	return nil
}

// knobsJSON is Knobs on the wire (POST /_sim/knobs); durations are Go
// duration strings, times RFC 3339. down_for starts an outage now (or
// after down_after) for that long; down_until ends one at a given time;
// "down_for":"0s" ends any outage.
type knobsJSON struct {
	DropRate     *float64   `json:"drop_rate,omitempty"`
	Delay        *string    `json:"delay,omitempty"`
	Jitter       *string    `json:"jitter,omitempty"`
	ErrorRate    *float64   `json:"error_rate,omitempty"`
	ThrottleRate *float64   `json:"throttle_rate,omitempty"`
	DownAfter    *string    `json:"down_after,omitempty"`
	DownFor      *string    `json:"down_for,omitempty"`
	DownFrom     *time.Time `json:"down_from,omitempty"`
	DownUntil    *time.Time `json:"down_until,omitempty"`
}

// MarshalJSON writes every knob.
func (k Knobs) MarshalJSON() ([]byte, error) {
	d, j := k.Delay.String(), k.Jitter.String()
	w := knobsJSON{DropRate: &k.DropRate, Delay: &d, Jitter: &j, ErrorRate: &k.ErrorRate, ThrottleRate: &k.ThrottleRate}
	if !k.DownUntil.IsZero() {
		from, until := k.DownFrom.UTC(), k.DownUntil.UTC()
		w.DownFrom, w.DownUntil = &from, &until
	}
	return json.Marshal(w)
}

// apply changes the knobs present in data (strictly parsed) and returns
// the result; now dates down_for and down_after.
func (k Knobs) apply(data []byte, now time.Time) (Knobs, error) {
	var w knobsJSON
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return k, err
	}
	n := k
	dur := func(s *string, dst *time.Duration) error {
		if s == nil {
			return nil
		}
		v, err := time.ParseDuration(*s)
		if err != nil {
			return err
		}
		*dst = v
		return nil
	}
	if err := errors.Join(dur(w.Delay, &n.Delay), dur(w.Jitter, &n.Jitter)); err != nil {
		return k, err
	}
	for _, f := range []struct{ src, dst *float64 }{{w.DropRate, &n.DropRate}, {w.ErrorRate, &n.ErrorRate}, {w.ThrottleRate, &n.ThrottleRate}} {
		if f.src != nil {
			*f.dst = *f.src
		}
	}
	var after, forD time.Duration
	if err := errors.Join(dur(w.DownAfter, &after), dur(w.DownFor, &forD)); err != nil {
		return k, err
	}
	switch {
	case w.DownFor != nil:
		n.DownFrom = now.Add(after)
		n.DownUntil = n.DownFrom.Add(forD)
		if forD <= 0 {
			n.DownFrom, n.DownUntil = time.Time{}, time.Time{}
		}
	case w.DownUntil != nil:
		n.DownFrom, n.DownUntil = now.Add(after), *w.DownUntil
		if w.DownFrom != nil {
			n.DownFrom = *w.DownFrom
		}
	case w.DownAfter != nil || w.DownFrom != nil:
		return k, errors.New("down_after and down_from need down_for or down_until")
	}
	if err := n.Validate(); err != nil {
		return k, err
	}
	return n, nil
}
