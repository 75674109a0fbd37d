// Package storetest holds the contract suites that every storage backend
// runs unchanged, so store/mem behaves like store/redis and code tested
// against one works against the other.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/licensehub/licensehub"
)

// The KV suite's unexported names start with "kv": this package also holds
// other backends' suites.
const (
	// kvShortTTL is long enough to observe a key before it expires and short
	// enough to keep the suite fast.
	kvShortTTL = 150 * time.Millisecond
	// kvExpiryWait bounds how long after its TTL a key may still be visible
	// before the suite gives up (slow CI machines, -race).
	kvExpiryWait = 10 * time.Second
	// kvRacers is how many goroutines the concurrency tests start.
	kvRacers = 100
)

// KV runs the licensehub.KV contract. open must return an empty KV that no
// other call of open shares (a fresh store, or a fresh key prefix on a shared
// server) and must release it with t.Cleanup. Subtests run in parallel.
func KV(t *testing.T, open func(t *testing.T) licensehub.KV) {
	tests := []struct {
		name string
		fn   func(t *testing.T, kv licensehub.KV)
	}{
		{"GetMissing", kvGetMissing},
		{"SetGet", kvSetGet},
		{"SetTTLExpires", kvSetTTLExpires},
		{"SetClearsTTL", kvSetClearsTTL},
		{"SetNX", kvSetNX},
		{"SetNXRace", kvSetNXRace},
		{"CompareAndDelete", kvCompareAndDelete},
		{"CompareAndExpire", kvCompareAndExpire},
		{"CompareAndExpireRace", kvCompareAndExpireRace},
		{"Delete", kvDelete},
		{"Incr", kvIncr},
		{"IncrTTLFixedWindow", kvIncrTTLFixedWindow},
		{"IncrKeepsExistingExpiry", kvIncrKeepsExistingExpiry},
		{"IncrRace", kvIncrRace},
		{"Sets", kvSets},
		{"EmptySet", kvEmptySet},
		{"SortedSets", kvSortedSets},
		{"SortedSetTies", kvSortedSetTies},
		{"Streams", kvStreams},
		{"StreamFields", kvStreamFields},
		{"StreamIDsIncrease", kvStreamIDsIncrease},
		{"MissingStream", kvMissingStream},
		{"StreamTrim", kvStreamTrim},
		{"StreamTrimKeepsLastID", kvStreamTrimKeepsLastID},
		{"StreamTrimRace", kvStreamTrimRace},
		{"WrongType", kvWrongType},
		{"CancelledContext", kvCancelledContext},
		{"ExpiredDeadline", kvExpiredDeadline},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

// ---- strings ----

func kvGetMissing(t *testing.T, kv licensehub.KV) {
	ctx := t.Context()
	_, err := kv.Get(ctx, "missing")
	kvWantCode(t, err, licensehub.ENOTFOUND, "Get(missing)")
}

func kvSetGet(t *testing.T, kv licensehub.KV) {
	ctx := t.Context()
	cases := []struct {
		name  string
		key   string
		value []byte
	}{
		{"text", "k-text", []byte("hello")},
		{"binary", "k-binary", []byte{0, 1, 0xfe, 0xff, '\r', '\n', 0}},
		{"empty", "k-empty", []byte{}},
		{"large", "k-large", bytes.Repeat([]byte("0123456789abcdef"), 1<<16)},
		{"odd key", "a:b/c d{e}*?[x]\x00é", []byte("v")},
		{"unicode", "k-unicode", []byte("电子证照")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := slices.Clone(tc.value)
			if err := kv.Set(ctx, tc.key, in, 0); err != nil {
				t.Fatalf("Set: %v", err)
			}
			if len(in) > 0 {
				in[0] ^= 0xff // the store must not keep the caller's slice
			}
			got := kvMustGet(t, kv, tc.key)
			if !bytes.Equal(got, tc.value) {
				t.Fatalf("Get = %q (len %d), want %q (len %d)", kvTrunc(got), len(got), kvTrunc(tc.value), len(tc.value))
			}
			if len(got) > 0 {
				got[0] ^= 0xff // nor hand out its own
			}
			if again := kvMustGet(t, kv, tc.key); !bytes.Equal(again, tc.value) {
				t.Fatalf("Get after mutating the returned slice = %q, want %q", kvTrunc(again), kvTrunc(tc.value))
			}
		})
	}

	t.Run("overwrite", func(t *testing.T) {
		kvMustSet(t, kv, "k-over", "first", 0)
		kvMustSet(t, kv, "k-over", "second", 0)
		if got := kvMustGet(t, kv, "k-over"); string(got) != "second" {
			t.Fatalf("Get = %q, want %q", got, "second")
		}
	})
}

func kvSetTTLExpires(t *testing.T, kv licensehub.KV) {
	ctx := t.Context()
	start := time.Now()
	kvMustSet(t, kv, "k", "v", kvShortTTL)
	// A negative TTL means no expiry, like 0.
	kvMustSet(t, kv, "forever", "v", -time.Second)
	got, err := kv.Get(ctx, "k")
	switch {
	case err == nil && string(got) != "v":
		t.Fatalf("Get right after Set = %q, want %q", got, "v")
	case err != nil && time.Since(start) < kvShortTTL:
		t.Fatalf("Get within the TTL: %v; the key expired early", err)
	case err != nil && !licensehub.IsCode(err, licensehub.ENOTFOUND):
		t.Fatalf("Get: %v", err)
	}

	kvWaitGone(t, kv, "k")
	if elapsed := time.Since(start); elapsed < kvShortTTL {
		t.Fatalf("key expired %s after Set, before its TTL of %s", elapsed, kvShortTTL)
	}
	if _, err := kv.Get(ctx, "forever"); err != nil {
		t.Fatalf("Get(key set with ttl < 0) after another key expired: %v", err)
	}
}

func kvSetClearsTTL(t *testing.T, kv licensehub.KV) {
	kvMustSet(t, kv, "k", "short", kvShortTTL)
	kvMustSet(t, kv, "k", "long", 0)
	// Asserting that something does not happen needs a wait: twice the TTL.
	time.Sleep(2 * kvShortTTL)
	if got := kvMustGet(t, kv, "k"); string(got) != "long" {
		t.Fatalf("Get = %q, want %q: Set without TTL must drop the previous TTL", got, "long")
	}
}

func kvSetNX(t *testing.T, kv licensehub.KV) {
	ctx := t.Context()
	ok, err := kv.SetNX(ctx, "lock", []byte("first"), time.Minute)
	if err != nil || !ok {
		t.Fatalf("first SetNX = %v, %v; want true, nil", ok, err)
	}
	ok, err = kv.SetNX(ctx, "lock", []byte("second"), 0)
	if err != nil || ok {
		t.Fatalf("second SetNX = %v, %v; want false, nil", ok, err)
	}
	if got := kvMustGet(t, kv, "lock"); string(got) != "first" {
		t.Fatalf("Get after losing SetNX = %q, want %q", got, "first")
	}

	// Once the holder's TTL runs out the key can be taken again, and not
	// before.
	start := time.Now()
	ok, err = kv.SetNX(ctx, "lease", []byte("first"), kvShortTTL)
	if err != nil || !ok {
		t.Fatalf("SetNX(lease) = %v, %v; want true, nil", ok, err)
	}
	kvEventually(t, "SetNX to succeed after the TTL expired", func() bool {
		ok, err := kv.SetNX(ctx, "lease", []byte("second"), 0)
		if err != nil {
			t.Fatalf("SetNX while waiting for expiry: %v", err)
		}
		return ok
	})
	if elapsed := time.Since(start); elapsed < kvShortTTL {
		t.Fatalf("SetNX took the lease %s after it was set, before its TTL of %s", elapsed, kvShortTTL)
	}
	if got := kvMustGet(t, kv, "lease"); string(got) != "second" {
		t.Fatalf("Get after re-acquiring = %q, want %q", got, "second")
	}
}

func kvSetNXRace(t *testing.T, kv licensehub.KV) {
	ctx := t.Context()
	var (
		start  = make(chan struct{})
		wg     sync.WaitGroup
		mu     sync.Mutex
		wins   []string
		errs   []error
		values = make([]string, kvRacers)
	)
	for i := range kvRacers {
		values[i] = "racer-" + strconv.Itoa(i)
		wg.Go(func() {
			<-start
			ok, err := kv.SetNX(ctx, "lock", []byte(values[i]), time.Minute)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			}
			if ok {
				wins = append(wins, values[i])
			}
		})
	}
	close(start)
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d SetNX calls failed, first: %v", len(errs), errs[0])
	}
	if len(wins) != 1 {
		t.Fatalf("%d of %d racing SetNX calls won (%v), want exactly 1", len(wins), kvRacers, wins)
	}
	if got := kvMustGet(t, kv, "lock"); string(got) != wins[0] {
		t.Fatalf("Get = %q, want the winner's value %q", got, wins[0])
	}
}

func kvCompareAndDelete(t *testing.T, kv licensehub.KV) {
	ctx := t.Context()
	cases := []struct {
		name    string
		stored  string // "" means the key is absent
		compare string
		want    bool
	}{
		{"missing key", "", "owner", false},
		{"wrong value", "owner-a", "owner-b", false},
		{"prefix of value", "owner", "own", false},
		{"longer value", "own", "owner", false},
		{"right value", "owner", "owner", true},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			key := fmt.Sprintf("lock-%d", i)
			if tc.stored != "" {
				kvMustSet(t, kv, key, tc.stored, time.Minute)
			}
			got, err := kv.CompareAndDelete(ctx, key, []byte(tc.compare))
			if err != nil || got != tc.want {
				t.Fatalf("CompareAndDelete = %v, %v; want %v, nil", got, err, tc.want)
			}
			_, err = kv.Get(ctx, key)
			switch {
			case tc.want || tc.stored == "":
				kvWantCode(t, err, licensehub.ENOTFOUND, "Get after CompareAndDelete")
			case err != nil:
				t.Fatalf("Get after a refused CompareAndDelete: %v; the key must survive", err)
			}
		})
	}
}

func kvCompareAndExpire(t *testing.T, kv licensehub.KV) {
	ctx := t.Context()
	cases := []struct {
		name    string
		stored  string // "" means the key is absent
		compare string
		ttl     time.Duration
		want    bool
	}{
		{"missing key", "", "owner", time.Minute, false},
		{"wrong value", "owner-a", "owner-b", time.Minute, false},
		{"prefix of value", "owner", "own", time.Minute, false},
		{"longer value", "own", "owner", time.Minute, false},
		{"right value", "owner", "owner", time.Minute, true},
		{"right value, no expiry", "owner", "owner", 0, true},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			key := fmt.Sprintf("lease-%d", i)
			if tc.stored != "" {
				kvMustSet(t, kv, key, tc.stored, kvShortTTL)
			}
			got, err := kv.CompareAndExpire(ctx, key, []byte(tc.compare), tc.ttl)
			if err != nil || got != tc.want {
				t.Fatalf("CompareAndExpire = %v, %v; want %v, nil", got, err, tc.want)
			}
			if !tc.want {
				// Refused: the key keeps its short TTL (or stays absent).
				kvWaitGone(t, kv, key)
				return
			}
			// Asserting that something does not happen needs a wait: twice
			// the TTL it had before.
			time.Sleep(2 * kvShortTTL)
			if got := kvMustGet(t, kv, key); string(got) != tc.stored {
				t.Fatalf("Get after CompareAndExpire = %q, want %q", got, tc.stored)
			}
		})
	}

	t.Run("shortens", func(t *testing.T) {
		kvMustSet(t, kv, "long", "owner", 0)
		if ok, err := kv.CompareAndExpire(ctx, "long", []byte("owner"), kvShortTTL); err != nil || !ok {
			t.Fatalf("CompareAndExpire = %v, %v; want true, nil", ok, err)
		}
		kvWaitGone(t, kv, "long")
	})
	t.Run("expired key is not revived", func(t *testing.T) {
		kvMustSet(t, kv, "gone", "owner", kvShortTTL)
		kvWaitGone(t, kv, "gone")
		if ok, err := kv.CompareAndExpire(ctx, "gone", []byte("owner"), time.Minute); err != nil || ok {
			t.Fatalf("CompareAndExpire of an expired key = %v, %v; want false, nil", ok, err)
		}
		_, err := kv.Get(ctx, "gone")
		kvWantCode(t, err, licensehub.ENOTFOUND, "Get after CompareAndExpire of an expired key")
	})
}

// kvCompareAndExpireRace renews an old holder's value while the key is
// deleted and taken by a new holder with a short TTL: were the check and
// the expiry two steps, some renewal would extend the new holder's key,
// which then outlives its TTL.
func kvCompareAndExpireRace(t *testing.T, kv licensehub.KV) {
	ctx := t.Context()
	kvMustSet(t, kv, "lease", "old", time.Minute)
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, kvRacers)
	for range kvRacers {
		wg.Go(func() {
			<-start
			if _, err := kv.CompareAndExpire(ctx, "lease", []byte("old"), time.Hour); err != nil {
				errs <- err
			}
		})
	}
	close(start)
	if ok, err := kv.CompareAndDelete(ctx, "lease", []byte("old")); err != nil || !ok {
		t.Fatalf("CompareAndDelete(old) = %v, %v; want true, nil", ok, err)
	}
	if ok, err := kv.SetNX(ctx, "lease", []byte("new"), kvShortTTL); err != nil || !ok {
		t.Fatalf("SetNX(new) = %v, %v; want true, nil", ok, err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("CompareAndExpire: %v", err)
	}
	kvWaitGone(t, kv, "lease")
}

func kvDelete(t *testing.T, kv licensehub.KV) {
	ctx := t.Context()
	for _, k := range []string{"a", "b", "c"} {
		kvMustSet(t, kv, k, "v-"+k, 0)
	}
	kvMust(t, kv.SAdd(ctx, "set", "m"))
	kvMust(t, kv.ZAdd(ctx, "zset", 1, "m"))
	if _, err := kv.XAdd(ctx, "stream", map[string]string{"f": "v"}); err != nil {
		t.Fatal(err)
	}

	if err := kv.Delete(ctx, "a", "b", "set", "zset", "stream", "never-existed"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if err := kv.Delete(ctx); err != nil {
		t.Fatalf("Delete with no keys: %v", err)
	}
	for _, k := range []string{"a", "b"} {
		_, err := kv.Get(ctx, k)
		kvWantCode(t, err, licensehub.ENOTFOUND, "Get("+k+") after Delete")
	}
	if got := kvMustGet(t, kv, "c"); string(got) != "v-c" {
		t.Fatalf("Get(c) = %q; Delete removed a key it was not given", got)
	}
	if m, err := kv.SMembers(ctx, "set"); err != nil || len(m) != 0 {
		t.Fatalf("SMembers after Delete = %v, %v; want empty", m, err)
	}
	if z, err := kv.ZRangeByScore(ctx, "zset", math.Inf(-1), math.Inf(1), 0); err != nil || len(z) != 0 {
		t.Fatalf("ZRangeByScore after Delete = %v, %v; want empty", z, err)
	}
	if n, err := kv.XLen(ctx, "stream"); err != nil || n != 0 {
		t.Fatalf("XLen after Delete = %d, %v; want 0", n, err)
	}
}

// ---- counters ----

func kvIncr(t *testing.T, kv licensehub.KV) {
	ctx := t.Context()
	steps := []struct {
		delta int64
		want  int64
	}{
		{1, 1}, // creates the key
		{5, 6},
		{-10, -4},
		{0, -4},
	}
	for _, st := range steps {
		got, err := kv.Incr(ctx, "n", st.delta, 0)
		if err != nil || got != st.want {
			t.Fatalf("Incr(%d) = %d, %v; want %d, nil", st.delta, got, err, st.want)
		}
	}
	if got := kvMustGet(t, kv, "n"); string(got) != "-4" {
		t.Fatalf("Get(counter) = %q, want %q (decimal text)", got, "-4")
	}

	kvMustSet(t, kv, "set-by-set", "41", 0)
	if got, err := kv.Incr(ctx, "set-by-set", 1, 0); err != nil || got != 42 {
		t.Fatalf("Incr on a decimal string = %d, %v; want 42, nil", got, err)
	}

	bad := []struct{ name, value string }{
		{"text", "abc"},
		{"float", "1.5"},
		{"plus sign", "+1"},
		{"space", " 1"},
		{"empty", ""},
		{"too big", "9223372036854775808"},
	}
	for _, b := range bad {
		key := "bad-" + b.name
		kvMustSet(t, kv, key, b.value, 0)
		_, err := kv.Incr(ctx, key, 1, 0)
		kvWantCode(t, err, licensehub.EINVALID, fmt.Sprintf("Incr on %q", b.value))
		if got := kvMustGet(t, kv, key); string(got) != b.value {
			t.Fatalf("failed Incr changed %q to %q", b.value, got)
		}
	}

	kvMustSet(t, kv, "max", strconv.FormatInt(math.MaxInt64, 10), 0)
	_, err := kv.Incr(ctx, "max", 1, 0)
	kvWantCode(t, err, licensehub.EINVALID, "Incr past MaxInt64")
	kvMustSet(t, kv, "min", strconv.FormatInt(math.MinInt64, 10), 0)
	_, err = kv.Incr(ctx, "min", -1, 0)
	kvWantCode(t, err, licensehub.EINVALID, "Incr below MinInt64")
}

// kvIncrTTLFixedWindow checks that the TTL set when Incr creates a key is
// not pushed back by later increments: the key expires ttl after creation.
//
// The check only relies on lower bounds of elapsed time, so a slow machine
// can make it pass vacuously but never fail spuriously: the key was created
// before created returned, so it must be gone once created+ttl has passed;
// had the second Incr (sent after created) reset the TTL, it would still be
// there.
func kvIncrTTLFixedWindow(t *testing.T, kv licensehub.KV) {
	ctx := t.Context()
	const ttl = time.Second
	sent := time.Now()
	if n, err := kv.Incr(ctx, "window", 1, ttl); err != nil || n != 1 {
		t.Fatalf("first Incr = %d, %v; want 1, nil", n, err)
	}
	created := time.Now()
	time.Sleep(ttl / 4)
	n, err := kv.Incr(ctx, "window", 1, ttl)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		if n == 1 && time.Since(sent) >= ttl {
			t.Skipf("machine too slow: the window of %s closed between two Incr calls %s apart", ttl, ttl/4)
		}
		t.Fatalf("second Incr = %d, want 2", n)
	}

	time.Sleep(time.Until(created.Add(ttl + 20*time.Millisecond)))
	if v, err := kv.Get(ctx, "window"); !licensehub.IsCode(err, licensehub.ENOTFOUND) {
		t.Fatalf("Get %s after the counter was created with TTL %s = %q, %v; want %s: a later Incr extended the TTL",
			time.Since(created), ttl, v, err, licensehub.ENOTFOUND)
	}
	// The next Incr opens a new window.
	if n, err := kv.Incr(ctx, "window", 1, ttl); err != nil || n != 1 {
		t.Fatalf("Incr after the window expired = %d, %v; want 1, nil", n, err)
	}
}

// kvIncrKeepsExistingExpiry checks that Incr applies ttl only to a key it
// creates: it neither adds an expiry to a persistent key nor changes one.
func kvIncrKeepsExistingExpiry(t *testing.T, kv licensehub.KV) {
	ctx := t.Context()
	const ttl = time.Second
	kvMustSet(t, kv, "persistent", "10", 0)
	if n, err := kv.Incr(ctx, "persistent", 1, kvShortTTL); err != nil || n != 11 {
		t.Fatalf("Incr = %d, %v; want 11, nil", n, err)
	}
	if n, err := kv.Incr(ctx, "no-ttl", 1, 0); err != nil || n != 1 {
		t.Fatalf("Incr = %d, %v; want 1, nil", n, err)
	}
	start := time.Now()
	kvMustSet(t, kv, "expiring", "10", ttl)
	n, err := kv.Incr(ctx, "expiring", 1, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if n != 11 {
		if n == 1 && time.Since(start) >= ttl {
			t.Skipf("machine too slow: a TTL of %s ran out between Set and Incr", ttl)
		}
		t.Fatalf("Incr = %d, want 11", n)
	}
	kvWaitGone(t, kv, "expiring")
	// Asserting that something does not happen needs a wait: the other keys
	// were given kvShortTTL (or none) before "expiring" was even set.
	for _, k := range []string{"persistent", "no-ttl"} {
		if _, err := kv.Get(ctx, k); err != nil {
			t.Fatalf("Get(%s): %v; Incr must not add an expiry to a key it did not create", k, err)
		}
	}
}

func kvIncrRace(t *testing.T, kv licensehub.KV) {
	ctx := t.Context()
	var (
		start = make(chan struct{})
		wg    sync.WaitGroup
		got   = make([]int64, kvRacers)
		errs  = make([]error, kvRacers)
	)
	for i := range kvRacers {
		wg.Go(func() {
			<-start
			got[i], errs[i] = kv.Incr(ctx, "hits", 1, time.Minute)
		})
	}
	close(start)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("racing Incr failed: %v", err)
	}
	slices.Sort(got)
	for i, n := range got {
		if n != int64(i+1) {
			t.Fatalf("racing Incr returned %v, want each of 1..%d exactly once", got, kvRacers)
		}
	}
	if v := kvMustGet(t, kv, "hits"); string(v) != strconv.Itoa(kvRacers) {
		t.Fatalf("counter = %s after %d concurrent Incr, want %d", v, kvRacers, kvRacers)
	}
}

// ---- sets ----

func kvSets(t *testing.T, kv licensehub.KV) {
	ctx := t.Context()
	kvMust(t, kv.SAdd(ctx, "s", "b", "a", "c", "a", "B", "", "许可"))
	kvMust(t, kv.SAdd(ctx, "s", "c")) // already a member
	kvMust(t, kv.SAdd(ctx, "s"))      // nothing to add
	kvWantMembers(t, kv, "s", "", "B", "a", "b", "c", "许可")

	for _, tc := range []struct {
		member string
		want   bool
	}{
		{"a", true}, {"", true}, {"许可", true}, {"A", false}, {"z", false},
	} {
		if got, err := kv.SIsMember(ctx, "s", tc.member); err != nil || got != tc.want {
			t.Fatalf("SIsMember(%q) = %v, %v; want %v, nil", tc.member, got, err, tc.want)
		}
	}

	kvMust(t, kv.SRem(ctx, "s", "b", "not-a-member"))
	kvMust(t, kv.SRem(ctx, "s"))
	kvWantMembers(t, kv, "s", "", "B", "a", "c", "许可")
	if ok, err := kv.SIsMember(ctx, "s", "b"); err != nil || ok {
		t.Fatalf("SIsMember(removed) = %v, %v; want false, nil", ok, err)
	}
}

func kvEmptySet(t *testing.T, kv licensehub.KV) {
	ctx := t.Context()
	kvWantMembers(t, kv, "never")
	if ok, err := kv.SIsMember(ctx, "never", "x"); err != nil || ok {
		t.Fatalf("SIsMember on a missing set = %v, %v; want false, nil", ok, err)
	}
	kvMust(t, kv.SRem(ctx, "never", "x"))

	kvMust(t, kv.SAdd(ctx, "s", "x", "y"))
	kvMust(t, kv.SRem(ctx, "s", "x", "y"))
	kvWantMembers(t, kv, "s")
	// An emptied set is gone: the key can hold a string now.
	if ok, err := kv.SetNX(ctx, "s", []byte("v"), 0); err != nil || !ok {
		t.Fatalf("SetNX on an emptied set = %v, %v; want true, nil", ok, err)
	}
}

// ---- sorted sets ----

func kvSortedSets(t *testing.T, kv licensehub.KV) {
	ctx := t.Context()
	for _, z := range []licensehub.ScoredMember{
		kvMember("c", 3), kvMember("a", 1), kvMember("b2", 2), kvMember("b1", 2), kvMember("e", 5), kvMember("neg", -1.5), kvMember("b0", 2), kvMember("tenth", 0.1),
	} {
		kvMust(t, kv.ZAdd(ctx, "z", z.Score, z.Member))
	}
	kvMust(t, kv.ZAdd(ctx, "z", 4, "b0")) // update moves b0 from 2 to 4

	inf := math.Inf(1)
	cases := []struct {
		name     string
		min, max float64
		limit    int
		want     []licensehub.ScoredMember
	}{
		{"all", -inf, inf, 0, []licensehub.ScoredMember{
			kvMember("neg", -1.5), kvMember("tenth", 0.1), kvMember("a", 1), kvMember("b1", 2), kvMember("b2", 2), kvMember("c", 3), kvMember("b0", 4), kvMember("e", 5)}},
		{"inclusive bounds", 2, 4, 0, []licensehub.ScoredMember{kvMember("b1", 2), kvMember("b2", 2), kvMember("c", 3), kvMember("b0", 4)}},
		{"limit", 2, 4, 3, []licensehub.ScoredMember{kvMember("b1", 2), kvMember("b2", 2), kvMember("c", 3)}},
		{"limit 1", -inf, inf, 1, []licensehub.ScoredMember{kvMember("neg", -1.5)}},
		{"limit beyond size", 1, 1, 10, []licensehub.ScoredMember{kvMember("a", 1)}},
		{"negative limit means all", 3, inf, -1, []licensehub.ScoredMember{kvMember("c", 3), kvMember("b0", 4), kvMember("e", 5)}},
		{"single point", -1.5, -1.5, 0, []licensehub.ScoredMember{kvMember("neg", -1.5)}},
		{"fraction round-trips", 0.1, 0.1, 0, []licensehub.ScoredMember{kvMember("tenth", 0.1)}},
		{"between scores", 1.1, 1.9, 0, []licensehub.ScoredMember{}},
		{"above all", 5.5, inf, 0, []licensehub.ScoredMember{}},
		{"min above max", 4, 2, 0, []licensehub.ScoredMember{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			kvWantRange(t, kv, "z", tc.min, tc.max, tc.limit, tc.want)
		})
	}

	t.Run("ZRem", func(t *testing.T) {
		kvMust(t, kv.ZAdd(ctx, "zr", 1, "x"))
		kvMust(t, kv.ZAdd(ctx, "zr", 1, "y"))
		kvMust(t, kv.ZAdd(ctx, "zr", 2, "z"))
		kvMust(t, kv.ZRem(ctx, "zr", "x", "not-a-member"))
		kvMust(t, kv.ZRem(ctx, "zr"))
		kvWantRange(t, kv, "zr", -inf, inf, 0, []licensehub.ScoredMember{kvMember("y", 1), kvMember("z", 2)})
		kvMust(t, kv.ZRem(ctx, "zr", "y", "z"))
		kvWantRange(t, kv, "zr", -inf, inf, 0, []licensehub.ScoredMember{})
		kvMust(t, kv.ZRem(ctx, "never", "x"))
	})

	t.Run("missing", func(t *testing.T) {
		kvWantRange(t, kv, "never", -inf, inf, 0, []licensehub.ScoredMember{})
	})

	t.Run("NaN", func(t *testing.T) {
		kvWantCode(t, kv.ZAdd(ctx, "z", math.NaN(), "x"), licensehub.EINVALID, "ZAdd(NaN)")
		_, err := kv.ZRangeByScore(ctx, "z", math.NaN(), 1, 0)
		kvWantCode(t, err, licensehub.EINVALID, "ZRangeByScore(NaN, 1)")
	})
}

func kvSortedSetTies(t *testing.T, kv licensehub.KV) {
	ctx := t.Context()
	// Insert in reverse and shuffled order; equal scores come back by
	// member in byte order, whatever the insertion order.
	members := []string{"job-9", "job-10", "Job-1", "job-1", "job-01", "job-", "job-a"}
	for _, m := range members {
		kvMust(t, kv.ZAdd(ctx, "due", 1700000000, m))
	}
	kvMust(t, kv.ZAdd(ctx, "due", 1699999999, "earlier"))
	want := []licensehub.ScoredMember{kvMember("earlier", 1699999999)}
	sorted := slices.Clone(members)
	slices.Sort(sorted)
	for _, m := range sorted {
		want = append(want, licensehub.ScoredMember{Member: m, Score: 1700000000})
	}
	kvWantRange(t, kv, "due", 0, 2e9, 0, want)
	kvWantRange(t, kv, "due", 0, 2e9, 4, want[:4])
}

// ---- streams ----

var kvStreamIDPattern = regexp.MustCompile(`^[0-9]+-[0-9]+$`)

func kvStreams(t *testing.T, kv licensehub.KV) {
	ctx := t.Context()
	var ids []string
	for i := range 5 {
		id, err := kv.XAdd(ctx, "events", map[string]string{"n": strconv.Itoa(i), "kind": "test"})
		if err != nil {
			t.Fatalf("XAdd #%d: %v", i, err)
		}
		if !kvStreamIDPattern.MatchString(id) {
			t.Fatalf("XAdd returned ID %q, want <ms>-<seq>", id)
		}
		if len(ids) > 0 && !kvIDLess(t, ids[len(ids)-1], id) {
			t.Fatalf("XAdd returned %q after %q: IDs must strictly increase", id, ids[len(ids)-1])
		}
		ids = append(ids, id)
	}
	if n, err := kv.XLen(ctx, "events"); err != nil || n != 5 {
		t.Fatalf("XLen = %d, %v; want 5, nil", n, err)
	}

	cases := []struct {
		name  string
		after string
		count int
		want  []string
	}{
		{"from empty", "", 0, ids},
		{"from 0", "0", 0, ids},
		{"after first", ids[0], 0, ids[1:]},
		{"after middle", ids[2], 0, ids[3:]},
		{"after last", ids[4], 0, nil},
		{"count", "", 2, ids[:2]},
		{"count after middle", ids[1], 2, ids[2:4]},
		{"count beyond end", ids[3], 10, ids[4:]},
		{"negative count means all", "0", -1, ids},
		{"after an ID between entries", kvBetween(t, ids[1], ids[2]), 0, ids[2:]},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := kv.XRange(ctx, "events", tc.after, tc.count)
			if err != nil {
				t.Fatalf("XRange(after %q, count %d): %v", tc.after, tc.count, err)
			}
			if gotIDs := kvEntryIDs(got); !slices.Equal(gotIDs, tc.want) {
				t.Fatalf("XRange(after %q, count %d) = %v, want %v", tc.after, tc.count, gotIDs, tc.want)
			}
			for _, e := range got {
				i := slices.Index(ids, e.ID)
				want := map[string]string{"n": strconv.Itoa(i), "kind": "test"}
				if !maps.Equal(e.Fields, want) {
					t.Fatalf("entry %s fields = %v, want %v", e.ID, e.Fields, want)
				}
			}
		})
	}

	t.Run("invalid after ID", func(t *testing.T) {
		_, err := kv.XRange(ctx, "events", "not-an-id", 0)
		kvWantCode(t, err, licensehub.EINVALID, `XRange(after "not-an-id")`)
	})
	t.Run("no fields", func(t *testing.T) {
		_, err := kv.XAdd(ctx, "events", map[string]string{})
		kvWantCode(t, err, licensehub.EINVALID, "XAdd(no fields)")
		if n, err := kv.XLen(ctx, "events"); err != nil || n != 5 {
			t.Fatalf("XLen after a refused XAdd = %d, %v; want 5, nil", n, err)
		}
	})
}

func kvStreamFields(t *testing.T, kv licensehub.KV) {
	ctx := t.Context()
	cases := []map[string]string{
		{"one": "1"},
		{"empty": "", "spaces": "  a b  ", "newline": "x\ny", "unicode": "营业执照", "binaryish": "\x00\xff"},
		{"json": `{"license":"L-1","status":"issued"}`, "": "empty field name"},
	}
	var ids []string
	for _, fields := range cases {
		id, err := kv.XAdd(ctx, "s", fields)
		if err != nil {
			t.Fatalf("XAdd(%v): %v", fields, err)
		}
		ids = append(ids, id)
	}
	got, err := kv.XRange(ctx, "s", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(cases) {
		t.Fatalf("XRange returned %d entries, want %d", len(got), len(cases))
	}
	for i, e := range got {
		if e.ID != ids[i] || !maps.Equal(e.Fields, cases[i]) {
			t.Fatalf("entry %d = %s %q, want %s %q", i, e.ID, e.Fields, ids[i], cases[i])
		}
	}
	// The store keeps its own copy of the fields.
	got[0].Fields["one"] = "changed"
	again, err := kv.XRange(ctx, "s", "", 1)
	if err != nil {
		t.Fatal(err)
	}
	if again[0].Fields["one"] != "1" {
		t.Fatalf("mutating a returned entry changed the stream: %v", again[0].Fields)
	}
}

// kvStreamIDsIncrease appends from many goroutines at once, so most
// entries share a millisecond, and checks every ID is unique and the stream
// reads back in strictly increasing ID order.
func kvStreamIDsIncrease(t *testing.T, kv licensehub.KV) {
	ctx := t.Context()
	const writers, each = 10, 20
	var (
		wg   sync.WaitGroup
		got  = make([][]string, writers) // IDs per writer, in call order
		errs = make([]error, writers)
	)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				id, err := kv.XAdd(ctx, "burst", map[string]string{"w": strconv.Itoa(w), "i": strconv.Itoa(i)})
				if err != nil {
					errs[w] = err
					return
				}
				got[w] = append(got[w], id)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for w, wids := range got {
		for i, id := range wids {
			if ids[id] {
				t.Fatalf("XAdd returned ID %s twice", id)
			}
			ids[id] = true
			if i > 0 && !kvIDLess(t, wids[i-1], id) {
				t.Fatalf("writer %d got %s after %s: IDs must strictly increase", w, id, wids[i-1])
			}
		}
	}
	if n, err := kv.XLen(ctx, "burst"); err != nil || n != writers*each {
		t.Fatalf("XLen = %d, %v; want %d", n, err, writers*each)
	}
	all, err := kv.XRange(ctx, "burst", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != writers*each {
		t.Fatalf("XRange returned %d entries, want %d", len(all), writers*each)
	}
	for i, e := range all {
		if !ids[e.ID] {
			t.Fatalf("XRange returned ID %s that no XAdd returned", e.ID)
		}
		if i > 0 && !kvIDLess(t, all[i-1].ID, e.ID) {
			t.Fatalf("XRange order: %s then %s", all[i-1].ID, e.ID)
		}
	}
	// Paging with the last ID seen walks the whole stream exactly once.
	var paged []string
	for after := ""; ; {
		page, err := kv.XRange(ctx, "burst", after, 7)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		paged = append(paged, kvEntryIDs(page)...)
		after = page[len(page)-1].ID
	}
	if !slices.Equal(paged, kvEntryIDs(all)) {
		t.Fatalf("paging by 7 returned %d entries, want the %d of a full read in the same order", len(paged), len(all))
	}
}

func kvMissingStream(t *testing.T, kv licensehub.KV) {
	ctx := t.Context()
	for _, after := range []string{"", "0", "1-0", "1700000000000-5"} {
		got, err := kv.XRange(ctx, "never", after, 10)
		if err != nil || len(got) != 0 {
			t.Fatalf("XRange(missing, after %q) = %v, %v; want empty, nil", after, got, err)
		}
	}
	if n, err := kv.XLen(ctx, "never"); err != nil || n != 0 {
		t.Fatalf("XLen(missing) = %d, %v; want 0, nil", n, err)
	}
}

// kvStreamTrim checks XTrimMinID: exact (no ~), entries below minID go,
// the rest stays in order, and it reports how many it removed.
func kvStreamTrim(t *testing.T, kv licensehub.KV) {
	ctx := t.Context()
	var ids []string
	for i := range 6 {
		id, err := kv.XAdd(ctx, "events", map[string]string{"n": strconv.Itoa(i)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	first := kvParseID(t, ids[0])
	steps := []struct {
		name   string
		minID  string
		remove int64
		left   []string
	}{
		{"zero removes nothing", "0", 0, ids},
		{"first ID removes nothing", ids[0], 0, ids},
		{"milliseconds only mean <ms>-0", strconv.FormatUint(first.ms, 10), 0, ids},
		{"exact: one entry", ids[1], 1, ids[1:]},
		{"same minID again", ids[1], 0, ids[1:]},
		{"lower minID than already trimmed", ids[0], 0, ids[1:]},
		// <ms>-<seq+1> of an entry lies between it and the next one, or is
		// the next one: either way the entry goes and the next one stays.
		{"just after an entry", kvAfter(t, ids[2]), 2, ids[3:]},
		{"exact: two more", ids[5], 2, ids[5:]},
		{"beyond the last ID empties the stream", "18446744073709551615-18446744073709551615", 1, nil},
		{"empty stream", ids[5], 0, nil},
	}
	for _, st := range steps {
		n, err := kv.XTrimMinID(ctx, "events", st.minID)
		if err != nil || n != st.remove {
			t.Fatalf("%s: XTrimMinID(%q) = %d, %v; want %d, nil", st.name, st.minID, n, err, st.remove)
		}
		got, err := kv.XRange(ctx, "events", "", 0)
		if err != nil {
			t.Fatal(err)
		}
		if gotIDs := kvEntryIDs(got); !slices.Equal(gotIDs, st.left) {
			t.Fatalf("%s: XRange after XTrimMinID(%q) = %v, want %v", st.name, st.minID, gotIDs, st.left)
		}
		for _, e := range got {
			if want := strconv.Itoa(slices.Index(ids, e.ID)); e.Fields["n"] != want {
				t.Fatalf("%s: entry %s has n=%q, want %q: trimming moved fields", st.name, e.ID, e.Fields["n"], want)
			}
		}
		if l, err := kv.XLen(ctx, "events"); err != nil || l != int64(len(st.left)) {
			t.Fatalf("%s: XLen = %d, %v; want %d", st.name, l, err, len(st.left))
		}
	}

	t.Run("missing stream", func(t *testing.T) {
		if n, err := kv.XTrimMinID(ctx, "never", "1-0"); err != nil || n != 0 {
			t.Fatalf("XTrimMinID(missing) = %d, %v; want 0, nil", n, err)
		}
		if n, err := kv.XLen(ctx, "never"); err != nil || n != 0 {
			t.Fatalf("XLen after trimming a missing stream = %d, %v; want 0", n, err)
		}
	})
	t.Run("invalid IDs", func(t *testing.T) {
		if _, err := kv.XAdd(ctx, "kept", map[string]string{"f": "v"}); err != nil {
			t.Fatal(err)
		}
		for _, bad := range []string{"", "-", "+", "abc", "1-", "-1", "1-x", "1.5-0"} {
			_, err := kv.XTrimMinID(ctx, "kept", bad)
			kvWantCode(t, err, licensehub.EINVALID, fmt.Sprintf("XTrimMinID(%q)", bad))
		}
		if n, err := kv.XLen(ctx, "kept"); err != nil || n != 1 {
			t.Fatalf("XLen after refused trims = %d, %v; want 1", n, err)
		}
	})
}

// kvStreamTrimKeepsLastID checks that a stream trimmed empty still exists
// as a stream and never hands out an ID again: a journal that trims what
// it has processed relies on that to tell new entries from old ones.
func kvStreamTrimKeepsLastID(t *testing.T, kv licensehub.KV) {
	ctx := t.Context()
	var last string
	for range 3 {
		id, err := kv.XAdd(ctx, "j", map[string]string{"f": "v"})
		if err != nil {
			t.Fatal(err)
		}
		last = id
	}
	if n, err := kv.XTrimMinID(ctx, "j", "18446744073709551615-18446744073709551615"); err != nil || n != 3 {
		t.Fatalf("XTrimMinID(all) = %d, %v; want 3, nil", n, err)
	}
	// Still a stream: a string cannot be set over it with SetNX.
	if ok, err := kv.SetNX(ctx, "j", []byte("v"), 0); err != nil || ok {
		t.Fatalf("SetNX on a stream trimmed empty = %v, %v; want false, nil (the stream remains)", ok, err)
	}
	id, err := kv.XAdd(ctx, "j", map[string]string{"f": "again"})
	if err != nil {
		t.Fatal(err)
	}
	if !kvIDLess(t, last, id) {
		t.Fatalf("XAdd after trimming everything returned %s, not after the last ID %s", id, last)
	}
	got, err := kv.XRange(ctx, "j", last, 0)
	if err != nil || len(got) != 1 || got[0].ID != id {
		t.Fatalf("XRange(after %s) = %v, %v; want only %s", last, got, err, id)
	}
}

// kvStreamTrimRace trims behind concurrent appenders: every entry is either
// trimmed (counted once) or still there, never both, never lost.
func kvStreamTrimRace(t *testing.T, kv licensehub.KV) {
	ctx := t.Context()
	const writers, each = 5, 40
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		ids     []string
		errs    = make([]error, writers+1)
		trimmed int64
		stop    = make(chan struct{})
	)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				id, err := kv.XAdd(ctx, "q", map[string]string{"i": strconv.Itoa(i)})
				if err != nil {
					errs[w] = err
					return
				}
				mu.Lock()
				ids = append(ids, id)
				mu.Unlock()
			}
		})
	}
	var trimmer sync.WaitGroup
	trimmer.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			page, err := kv.XRange(ctx, "q", "", 3)
			if err != nil {
				errs[writers] = err
				return
			}
			if len(page) < 2 {
				continue
			}
			n, err := kv.XTrimMinID(ctx, "q", page[len(page)-1].ID)
			if err != nil {
				errs[writers] = err
				return
			}
			if n != int64(len(page)-1) {
				errs[writers] = fmt.Errorf("XTrimMinID(%s) removed %d entries, want the %d below it", page[len(page)-1].ID, n, len(page)-1)
				return
			}
			trimmed += n
		}
	})
	wg.Wait()
	close(stop)
	trimmer.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	left, err := kv.XLen(ctx, "q")
	if err != nil {
		t.Fatal(err)
	}
	if trimmed+left != writers*each {
		t.Fatalf("trimmed %d + left %d = %d entries, want %d", trimmed, left, trimmed+left, writers*each)
	}
	rest, err := kv.XRange(ctx, "q", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(ids, func(a, b string) int {
		switch {
		case kvIDLess(t, a, b):
			return -1
		case kvIDLess(t, b, a):
			return 1
		}
		return 0
	})
	if got, want := kvEntryIDs(rest), ids[len(ids)-len(rest):]; !slices.Equal(got, want) {
		t.Fatalf("entries left after trimming = %v, want the newest %d IDs %v", got, len(rest), want)
	}
}

// ---- errors ----

// kvWrongType uses keys as a kind they do not hold; like Redis's WRONGTYPE
// that fails with EINVALID and changes nothing.
func kvWrongType(t *testing.T, kv licensehub.KV) {
	ctx := t.Context()
	kvMustSet(t, kv, "str", "x", 0)
	kvMust(t, kv.SAdd(ctx, "set", "m"))
	kvMust(t, kv.ZAdd(ctx, "zset", 1, "m"))
	if _, err := kv.XAdd(ctx, "stream", map[string]string{"f": "v"}); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name string
		call func() error
	}{
		{"Get set", func() error { _, err := kv.Get(ctx, "set"); return err }},
		{"Incr set", func() error { _, err := kv.Incr(ctx, "set", 1, 0); return err }},
		{"CompareAndDelete zset", func() error { _, err := kv.CompareAndDelete(ctx, "zset", []byte("m")); return err }},
		{"CompareAndExpire set", func() error { _, err := kv.CompareAndExpire(ctx, "set", []byte("m"), time.Minute); return err }},
		{"SAdd string", func() error { return kv.SAdd(ctx, "str", "m") }},
		{"SRem zset", func() error { return kv.SRem(ctx, "zset", "m") }},
		{"SMembers zset", func() error { _, err := kv.SMembers(ctx, "zset"); return err }},
		{"SIsMember string", func() error { _, err := kv.SIsMember(ctx, "str", "x"); return err }},
		{"ZAdd set", func() error { return kv.ZAdd(ctx, "set", 1, "m") }},
		{"ZRem stream", func() error { return kv.ZRem(ctx, "stream", "m") }},
		{"ZRangeByScore string", func() error { _, err := kv.ZRangeByScore(ctx, "str", 0, 1, 0); return err }},
		{"XAdd string", func() error { _, err := kv.XAdd(ctx, "str", map[string]string{"f": "v"}); return err }},
		{"XRange set", func() error { _, err := kv.XRange(ctx, "set", "", 0); return err }},
		{"XLen zset", func() error { _, err := kv.XLen(ctx, "zset"); return err }},
		{"XTrimMinID string", func() error { _, err := kv.XTrimMinID(ctx, "str", "1-0"); return err }},
		{"XTrimMinID set", func() error { _, err := kv.XTrimMinID(ctx, "set", "1-0"); return err }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			kvWantCode(t, tc.call(), licensehub.EINVALID, tc.name)
		})
	}

	// Nothing above changed a key.
	if got := kvMustGet(t, kv, "str"); string(got) != "x" {
		t.Fatalf("Get(str) = %q after wrong-type calls, want %q", got, "x")
	}
	kvWantMembers(t, kv, "set", "m")
	kvWantRange(t, kv, "zset", 0, 10, 0, []licensehub.ScoredMember{kvMember("m", 1)})
	if n, err := kv.XLen(ctx, "stream"); err != nil || n != 1 {
		t.Fatalf("XLen(stream) = %d, %v; want 1", n, err)
	}

	// SetNX sees a key of any kind as present; Set replaces any kind.
	if ok, err := kv.SetNX(ctx, "set", []byte("v"), 0); err != nil || ok {
		t.Fatalf("SetNX on a set = %v, %v; want false, nil", ok, err)
	}
	kvMustSet(t, kv, "set", "now a string", 0)
	if got := kvMustGet(t, kv, "set"); string(got) != "now a string" {
		t.Fatalf("Get after Set over a set = %q", got)
	}
}

// calls exercises every KV method with ctx, for the context tests.
func kvCalls(kv licensehub.KV) []struct {
	name string
	call func(ctx context.Context) error
} {
	return []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"Get", func(ctx context.Context) error { _, err := kv.Get(ctx, "k"); return err }},
		{"Set", func(ctx context.Context) error { return kv.Set(ctx, "k", []byte("v"), 0) }},
		{"SetNX", func(ctx context.Context) error { _, err := kv.SetNX(ctx, "k", []byte("v"), 0); return err }},
		{"CompareAndDelete", func(ctx context.Context) error {
			_, err := kv.CompareAndDelete(ctx, "k", []byte("v"))
			return err
		}},
		{"CompareAndExpire", func(ctx context.Context) error {
			_, err := kv.CompareAndExpire(ctx, "k", []byte("v"), time.Minute)
			return err
		}},
		{"Delete", func(ctx context.Context) error { return kv.Delete(ctx, "k") }},
		{"Incr", func(ctx context.Context) error { _, err := kv.Incr(ctx, "n", 1, time.Minute); return err }},
		{"SAdd", func(ctx context.Context) error { return kv.SAdd(ctx, "s", "m") }},
		{"SRem", func(ctx context.Context) error { return kv.SRem(ctx, "s", "m") }},
		{"SMembers", func(ctx context.Context) error { _, err := kv.SMembers(ctx, "s"); return err }},
		{"SIsMember", func(ctx context.Context) error { _, err := kv.SIsMember(ctx, "s", "m"); return err }},
		{"ZAdd", func(ctx context.Context) error { return kv.ZAdd(ctx, "z", 1, "m") }},
		{"ZRem", func(ctx context.Context) error { return kv.ZRem(ctx, "z", "m") }},
		{"ZRangeByScore", func(ctx context.Context) error { _, err := kv.ZRangeByScore(ctx, "z", 0, 1, 0); return err }},
		{"XAdd", func(ctx context.Context) error { _, err := kv.XAdd(ctx, "x", map[string]string{"f": "v"}); return err }},
		{"XRange", func(ctx context.Context) error { _, err := kv.XRange(ctx, "x", "", 0); return err }},
		{"XLen", func(ctx context.Context) error { _, err := kv.XLen(ctx, "x"); return err }},
		{"XTrimMinID", func(ctx context.Context) error { _, err := kv.XTrimMinID(ctx, "x", "1-0"); return err }},
	}
}

// kvCancelledContext checks every method fails on a cancelled context,
// keeps context.Canceled in the chain, and writes nothing.
func kvCancelledContext(t *testing.T, kv licensehub.KV) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for _, c := range kvCalls(kv) {
		err := c.call(ctx)
		if err == nil {
			t.Errorf("%s with a cancelled context succeeded, want an error", c.name)
			continue
		}
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: %v; want context.Canceled in the chain", c.name, err)
		}
		if code := licensehub.ErrorCode(err); code == licensehub.EINTERNAL {
			t.Errorf("%s with a cancelled context: %v is not a *licensehub.Error", c.name, err)
		}
	}
	kvAssertUntouched(t, kv)
}

// kvExpiredDeadline checks every method fails with ETIMEOUT on a context
// whose deadline has passed, and writes nothing.
func kvExpiredDeadline(t *testing.T, kv licensehub.KV) {
	ctx, cancel := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
	defer cancel()
	for _, c := range kvCalls(kv) {
		err := c.call(ctx)
		if !licensehub.IsCode(err, licensehub.ETIMEOUT) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s with an expired deadline: %v; want %s wrapping context.DeadlineExceeded", c.name, err, licensehub.ETIMEOUT)
		}
	}
	kvAssertUntouched(t, kv)
}

// assertUntouched checks that none of the keys written by calls exists.
func kvAssertUntouched(t *testing.T, kv licensehub.KV) {
	t.Helper()
	ctx := t.Context()
	for _, k := range []string{"k", "n"} {
		_, err := kv.Get(ctx, k)
		kvWantCode(t, err, licensehub.ENOTFOUND, "Get("+k+") after failed calls")
	}
	kvWantMembers(t, kv, "s")
	kvWantRange(t, kv, "z", math.Inf(-1), math.Inf(1), 0, []licensehub.ScoredMember{})
	if n, err := kv.XLen(ctx, "x"); err != nil || n != 0 {
		t.Fatalf("XLen(x) after failed calls = %d, %v; want 0", n, err)
	}
}

// ---- helpers ----

func kvMust(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func kvMustSet(t *testing.T, kv licensehub.KV, key, value string, ttl time.Duration) {
	t.Helper()
	if err := kv.Set(t.Context(), key, []byte(value), ttl); err != nil {
		t.Fatalf("Set(%q): %v", key, err)
	}
}

func kvMustGet(t *testing.T, kv licensehub.KV, key string) []byte {
	t.Helper()
	b, err := kv.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return b
}

func kvWantCode(t *testing.T, err error, code, what string) {
	t.Helper()
	if !licensehub.IsCode(err, code) {
		t.Fatalf("%s: error %v (code %q), want code %q", what, err, licensehub.ErrorCode(err), code)
	}
}

func kvWantMembers(t *testing.T, kv licensehub.KV, key string, want ...string) {
	t.Helper()
	got, err := kv.SMembers(t.Context(), key)
	if err != nil {
		t.Fatalf("SMembers(%q): %v", key, err)
	}
	if len(got) != len(want) || (len(want) > 0 && !slices.Equal(got, want)) {
		t.Fatalf("SMembers(%q) = %q, want %q", key, got, want)
	}
}

func kvWantRange(t *testing.T, kv licensehub.KV, key string, min, max float64, limit int, want []licensehub.ScoredMember) {
	t.Helper()
	got, err := kv.ZRangeByScore(t.Context(), key, min, max, limit)
	if err != nil {
		t.Fatalf("ZRangeByScore(%q, %v, %v, %d): %v", key, min, max, limit, err)
	}
	if len(got) != len(want) || (len(want) > 0 && !slices.Equal(got, want)) {
		t.Fatalf("ZRangeByScore(%q, %v, %v, %d) = %v, want %v", key, min, max, limit, got, want)
	}
}

// eventually polls cond until it holds or kvExpiryWait passes.
func kvEventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(kvExpiryWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", kvExpiryWait, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitGone polls until key is gone (ENOTFOUND from Get).
func kvWaitGone(t *testing.T, kv licensehub.KV, key string) {
	t.Helper()
	kvEventually(t, key+" to expire", func() bool {
		_, err := kv.Get(t.Context(), key)
		if err != nil && !licensehub.IsCode(err, licensehub.ENOTFOUND) {
			t.Fatalf("Get(%q) while waiting for expiry: %v", key, err)
		}
		return err != nil
	})
}

func kvEntryIDs(es []licensehub.StreamEntry) []string {
	var ids []string
	for _, e := range es {
		ids = append(ids, e.ID)
	}
	return ids
}

type kvStreamID struct{ ms, seq uint64 }

func kvParseID(t *testing.T, id string) kvStreamID {
	t.Helper()
	ms, seq, ok := strings.Cut(id, "-")
	m, err1 := strconv.ParseUint(ms, 10, 64)
	s, err2 := strconv.ParseUint(seq, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		t.Fatalf("stream ID %q is not <ms>-<seq>", id)
	}
	return kvStreamID{m, s}
}

func kvIDLess(t *testing.T, a, b string) bool {
	t.Helper()
	x, y := kvParseID(t, a), kvParseID(t, b)
	return x.ms < y.ms || x.ms == y.ms && x.seq < y.seq
}

// between returns an ID strictly between the consecutive entries a and b
// (a's millisecond, next sequence), or a itself when they are adjacent in the
// same millisecond and nothing lies between them.
func kvBetween(t *testing.T, a, b string) string {
	t.Helper()
	x, y := kvParseID(t, a), kvParseID(t, b)
	c := kvStreamID{x.ms, x.seq + 1}
	if c.ms == y.ms && c.seq >= y.seq {
		// a and b are adjacent in the same millisecond: nothing lies
		// between them, so "after a" is the best stand-in.
		return a
	}
	return fmt.Sprintf("%d-%d", c.ms, c.seq)
}

// kvAfter returns the smallest ID greater than id.
func kvAfter(t *testing.T, id string) string {
	t.Helper()
	x := kvParseID(t, id)
	return fmt.Sprintf("%d-%d", x.ms, x.seq+1)
}

func kvTrunc(b []byte) []byte {
	if len(b) > 32 {
		return append(slices.Clip(b[:32]), "..."...)
	}
	return b
}

func kvMember(member string, score float64) licensehub.ScoredMember {
	return licensehub.ScoredMember{Member: member, Score: score}
}
