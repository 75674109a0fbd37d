package exchange

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/licensehub/licensehub/internal/testenv/testkeys"
)

// FuzzOpen: whatever arrives at the inbound endpoint or the simulator,
// Open never panics, and what it accepts is a well-formed event whose
// sender owns the signing key.
func FuzzOpen(f *testing.F) {
	const sender = "11430000MB0000001B"
	ring := testkeys.Current(f, sender)
	signer, err := ring.SignerFor(sender, time.Now())
	if err != nil {
		f.Fatal(err)
	}
	env, err := Seal(context.Background(), signer, &Event{Sender: sender, ID: "x/new", License: "x", Op: "new",
		Time: "2026-11-26T08:00:00Z"}, time.Now())
	if err != nil {
		f.Fatal(err)
	}
	keys := ring.Export()
	f.Add(env)
	f.Add([]byte(strings.Replace(string(env), `"x/new"`, `"y/new"`, 1))) // tampered
	f.Add([]byte(`{"body":{},"signature":{}}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		ev, err := Open(raw, keys)
		if err != nil {
			return
		}
		if ev.Type != EventType || ev.ID == "" || ev.Sender != sender {
			t.Fatalf("accepted a malformed event: %+v", ev)
		}
	})
}

// FuzzDecodeCursor: a feed cursor from a client never panics the feed, and
// every cursor the feed makes reads back to its position.
func FuzzDecodeCursor(f *testing.F) {
	f.Add("", "outbox/20261126T080000.000000000Z-0a1b2c.json", 3)
	f.Add("b3V0Ym94L3gjMQ", "outbox/x", 0)
	f.Add("!!!", "outbox/", -1)
	f.Fuzz(func(t *testing.T, cursor, key string, index int) {
		if k, i, err := DecodeCursor(cursor); err == nil && cursor != "" && (!strings.HasPrefix(k, outboxPrefix) || i < 0) {
			t.Fatalf("DecodeCursor(%q) = %q, %d", cursor, k, i)
		}
		if !strings.HasPrefix(key, outboxPrefix) || index < 0 {
			return
		}
		k, i, err := DecodeCursor(EncodeCursor(key, index))
		if err != nil || i != index || !strings.HasPrefix(k, outboxPrefix) {
			t.Fatalf("round trip of (%q, %d): %q %d %v", key, index, k, i, err)
		}
		if k != key {
			t.Fatalf("round trip of %q gave %q", key, k)
		}
	})
}
