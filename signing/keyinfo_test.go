package signing

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/licensehub/licensehub"
)

func TestCheckAt(t *testing.T) {
	base := KeyInfo{
		KeyID:     "0123456789abcdef0123456789abcdef",
		Authority: krAuthA,
		Algorithm: Algorithm,
		NotBefore: krTime("2025-01-01T00:00:00Z"),
		NotAfter:  krTime("2027-01-01T00:00:00Z"),
		State:     StateActive,
	}
	with := func(f func(k *KeyInfo)) KeyInfo {
		k := base.clone()
		f(&k)
		return k
	}
	retired := with(func(k *KeyInfo) { k.State, k.RetiredAt = StateRetired, krTimePtr("2026-01-01T00:00:00Z") })
	compromised := with(func(k *KeyInfo) { k.State, k.CompromisedAt = StateCompromised, krTimePtr("2025-06-01T00:00:00Z") })
	retiredThenCompromised := with(func(k *KeyInfo) {
		k.State, k.RetiredAt, k.CompromisedAt = StateCompromised, krTimePtr("2026-01-01T00:00:00Z"), krTimePtr("2025-06-01T00:00:00Z")
	})

	tests := []struct {
		name string
		key  KeyInfo
		at   string
		rule string // "" = accepted
		want []string
	}{
		{"inside validity", base, "2026-01-01T00:00:00Z", "", nil},
		{"at not_before", base, "2025-01-01T00:00:00Z", "", nil},
		{"at not_after", base, "2027-01-01T00:00:00Z", "", nil},
		{"other zone, same instant as not_after", base, "2027-01-01T08:00:00+08:00", "", nil},
		{"before not_before", base, "2024-12-31T23:59:59Z", RuleKeyOutsideValidity,
			[]string{base.KeyID, "valid from 2025-01-01T00:00:00Z to 2027-01-01T00:00:00Z", "2024-12-31T23:59:59Z is before"}},
		{"after not_after", base, "2027-01-01T00:00:00.000000001Z", RuleKeyOutsideValidity, []string{"is after"}},
		{"zero time", base, "0001-01-01T00:00:00Z", RuleKeyOutsideValidity, nil},
		{"retired: before retired_at", retired, "2025-12-31T23:59:59Z", "", nil},
		{"retired: at retired_at", retired, "2026-01-01T00:00:00Z", RuleKeyRetired,
			[]string{"retired at 2026-01-01T00:00:00Z", "claiming 2026-01-01T00:00:00Z"}},
		{"retired: after retired_at", retired, "2026-06-01T00:00:00Z", RuleKeyRetired, nil},
		{"retired: before not_before", retired, "2024-06-01T00:00:00Z", RuleKeyOutsideValidity, nil},
		{"retired without retired_at", with(func(k *KeyInfo) { k.State = StateRetired }), "2025-02-01T00:00:00Z", RuleKeyRetired,
			[]string{"unknown time"}},
		{"compromised: before", compromised, "2025-05-31T23:59:59Z", "", nil},
		{"compromised: at", compromised, "2025-06-01T00:00:00Z", RuleKeyCompromised,
			[]string{"compromised at 2025-06-01T00:00:00Z"}},
		{"compromised: after", compromised, "2026-06-01T00:00:00Z", RuleKeyCompromised, nil},
		{"compromised without compromised_at", with(func(k *KeyInfo) { k.State = StateCompromised }), "2025-02-01T00:00:00Z", RuleKeyCompromised,
			[]string{"unknown time"}},
		{"retired then compromised earlier: between", retiredThenCompromised, "2025-09-01T00:00:00Z", RuleKeyCompromised, nil},
		{"retired then compromised earlier: after both", retiredThenCompromised, "2026-09-01T00:00:00Z", RuleKeyCompromised, nil},
		{"retired then compromised earlier: before both", retiredThenCompromised, "2025-03-01T00:00:00Z", "", nil},
		{"unknown state", with(func(k *KeyInfo) { k.State = "suspended" }), "2026-01-01T00:00:00Z", RuleKeyUnknownState,
			[]string{`"suspended"`}},
		{"empty state", with(func(k *KeyInfo) { k.State = "" }), "2026-01-01T00:00:00Z", RuleKeyUnknownState, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.key.CheckAt(krTime(tc.at))
			if tc.rule == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			krWantErr(t, err, licensehub.ESIGINVALID, tc.want...)
			if got := errRule(err); got != tc.rule {
				t.Errorf("rule %q, want %q", got, tc.rule)
			}
			var e *licensehub.Error
			if errors.As(err, &e) && (e.Details["kid"] != tc.key.KeyID || e.Details["at"] == nil) {
				t.Errorf("details %v lack kid or at", e.Details)
			}
		})
	}
}

func TestCanSignAt(t *testing.T) {
	base := KeyInfo{
		KeyID:     "0123456789abcdef0123456789abcdef",
		Authority: krAuthA,
		NotBefore: krTime("2025-01-01T00:00:00Z"),
		NotAfter:  krTime("2027-01-01T00:00:00Z"),
		State:     StateActive,
	}
	tests := []struct {
		name string
		mod  func(k *KeyInfo)
		at   string
		rule string
		want []string
	}{
		{"active, inside", nil, "2026-01-01T00:00:00Z", "", nil},
		{"active, at not_after", nil, "2027-01-01T00:00:00Z", "", nil},
		{"active, expired", nil, "2027-01-02T00:00:00Z", RuleKeyOutsideValidity, []string{"is after"}},
		{"active, not yet valid", nil, "2024-01-02T00:00:00Z", RuleKeyOutsideValidity, []string{"is before"}},
		{"retired", func(k *KeyInfo) { k.State, k.RetiredAt = StateRetired, krTimePtr("2026-01-01T00:00:00Z") },
			"2025-06-01T00:00:00Z", RuleKeyNotActive, []string{"is retired since 2026-01-01T00:00:00Z", "no longer signs"}},
		{"compromised", func(k *KeyInfo) { k.State, k.CompromisedAt = StateCompromised, krTimePtr("2026-01-01T00:00:00Z") },
			"2025-06-01T00:00:00Z", RuleKeyNotActive, []string{"is compromised since"}},
		{"active but with retired_at", func(k *KeyInfo) { k.RetiredAt = krTimePtr("2026-01-01T00:00:00Z") },
			"2025-06-01T00:00:00Z", RuleKeyNotActive, []string{"marked active but has a retirement or compromise time"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k := base.clone()
			if tc.mod != nil {
				tc.mod(&k)
			}
			err := k.CanSignAt(krTime(tc.at))
			if tc.rule == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			krWantErr(t, err, licensehub.EKEYNOTFOUND, tc.want...)
			if got := errRule(err); got != tc.rule {
				t.Errorf("rule %q, want %q", got, tc.rule)
			}
		})
	}
}

func TestKeyInfoLogValue(t *testing.T) {
	k := KeyInfo{KeyID: "0123456789abcdef0123456789abcdef", Authority: krAuthA, State: StateRetired,
		NotBefore: krTime("2025-01-01T00:00:00Z"), NotAfter: krTime("2027-01-01T00:00:00Z"), RetiredAt: krTimePtr("2026-01-01T00:00:00Z")}
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("key", "key", k)
	for _, want := range []string{"key.kid=0123456789abcdef0123456789abcdef", "key.authority=" + krAuthA, "key.state=retired", "key.retired_at=2026-01-01T00:00:00"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("log %q lacks %q", buf.String(), want)
		}
	}
}

func TestClone(t *testing.T) {
	k := KeyInfo{RetiredAt: krTimePtr("2026-01-01T00:00:00Z"), CompromisedAt: krTimePtr("2026-02-01T00:00:00Z")}
	c := k.clone()
	*c.RetiredAt, *c.CompromisedAt = time.Time{}, time.Time{}
	if k.RetiredAt.IsZero() || k.CompromisedAt.IsZero() {
		t.Error("clone shares its time pointers")
	}
}
