// Package testkeys makes signing keyrings for tests.
//
// It is a package of its own, not part of testenv, because it imports
// signing, whose own tests import testenv: signing's tests must not use it.
package testkeys

import (
	"testing"
	"time"

	"github.com/licensehub/licensehub/signing"
)

// Generate writes a key for each authority, valid from from to until, into
// dir.
func Generate(tb testing.TB, dir string, from, until time.Time, authorities ...string) {
	tb.Helper()
	for _, a := range authorities {
		if _, err := signing.Generate(dir, a, from, until, nil); err != nil {
			tb.Fatal(err)
		}
	}
}

// Keyring generates a key for each authority, valid from from to until, in
// a fresh directory and opens the keyring there.
func Keyring(tb testing.TB, from, until time.Time, authorities ...string) *signing.Keyring {
	tb.Helper()
	return KeyringIn(tb, tb.TempDir(), from, until, authorities...)
}

// KeyringIn generates a key for each authority, valid from from to until,
// in dir and opens the keyring there.
func KeyringIn(tb testing.TB, dir string, from, until time.Time, authorities ...string) *signing.Keyring {
	tb.Helper()
	Generate(tb, dir, from, until, authorities...)
	ring, err := signing.OpenKeyring(dir)
	if err != nil {
		tb.Fatal(err)
	}
	return ring
}

// Fixed is Keyring valid from 2020 to 2040 (UTC).
func Fixed(tb testing.TB, authorities ...string) *signing.Keyring {
	tb.Helper()
	return Keyring(tb, time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC), authorities...)
}

// Current is Keyring valid from an hour ago for a year.
func Current(tb testing.TB, authorities ...string) *signing.Keyring {
	tb.Helper()
	now := time.Now().UTC()
	return Keyring(tb, now.Add(-time.Hour), now.AddDate(1, 0, 0), authorities...)
}
