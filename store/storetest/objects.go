// Package storetest holds the contract suites that every implementation of
// the hub's storage interfaces runs unchanged, so that the embedded and the
// server-backed stores behave alike.
package storetest

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/licensehub/licensehub"
)

// ObjectStore runs the licensehub.ObjectStore contract against the stores
// open returns. Every subtest calls open once and runs in parallel with the
// others, so open must return a store of its own (an empty directory, a
// fresh bucket) and register its cleanup with t.Cleanup.
//
// Deliberately unspecified: a key that is both an object and the prefix
// directory of other keys ("a" and "a/b"). MinIO accepts the pair but then
// lists only "a"; store/fs refuses the second write. The hub never needs
// such keys.
func ObjectStore(t *testing.T, open func(t *testing.T) licensehub.ObjectStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s licensehub.ObjectStore)
	}{
		{"RoundTrip", objRoundTrip},
		{"PutOverwrites", objPutOverwrites},
		{"Create", objCreate},
		{"CreateRace", objCreateRace},
		{"ConcurrentPuts", objConcurrentPuts},
		{"ConcurrentCreateDeleteSameDir", objConcurrentCreateDelete},
		{"NotFound", objNotFound},
		{"Delete", objDelete},
		{"KeyAlphabet", objKeyAlphabet},
		{"List", objList},
		{"ListStopsAtError", objListStopsAtError},
		{"ListContextEnded", objListContextEnded},
		{"InvalidKeys", objInvalidKeys},
		{"InvalidOptions", objInvalidOptions},
		{"EmptyObject", objEmptyObject},
		{"LargeUnknownSize", objLargeUnknownSize},
		{"BodyErrors", objBodyErrors},
		{"ContextEnded", objContextEnded},
		{"CancelDuringBody", objCancelDuringBody},
		{"Ping", objPing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, open(t))
		})
	}
}

// objReaderKinds are the shapes of body a caller may pass: a seekable reader
// with its size, a plain stream with its size, a stream of unknown size.
var objReaderKinds = []struct {
	name string
	body func(data []byte) (io.Reader, int64)
}{
	{"seekable", func(d []byte) (io.Reader, int64) { return bytes.NewReader(d), int64(len(d)) }},
	{"stream", func(d []byte) (io.Reader, int64) { return objOpaque(d), int64(len(d)) }},
	{"unknown-size", func(d []byte) (io.Reader, int64) { return objOpaque(d), -1 }},
}

// objOpaque hides everything of a reader but Read, as a network body does.
func objOpaque(data []byte) io.Reader {
	return struct{ io.Reader }{bytes.NewReader(data)}
}

func objRoundTrip(t *testing.T, s licensehub.ObjectStore) {
	binary := make([]byte, 3*256)
	for i := range binary {
		binary[i] = byte(i)
	}
	cases := []struct {
		name      string
		data      []byte
		opts      licensehub.PutOptions
		wantCType string
	}{
		{"plain", []byte("hello, hub"), licensehub.PutOptions{}, "application/octet-stream"},
		{"typed", []byte(`{"license":"L-42"}`), licensehub.PutOptions{
			ContentType: "application/json",
			Metadata:    map[string]string{"license-id": "L-42", "issuer": "city-hall", "v2": "a=b; c"},
		}, "application/json"},
		{"binary", binary, licensehub.PutOptions{
			ContentType: "application/pdf",
			Metadata:    map[string]string{"sha": "0123abc"},
		}, "application/pdf"},
	}
	for _, c := range cases {
		for _, kind := range objReaderKinds {
			key := fmt.Sprintf("roundtrip/%s/%s.bin", c.name, kind.name)
			r, size := kind.body(c.data)
			written, err := s.Put(t.Context(), key, r, size, c.opts)
			if err != nil {
				t.Fatalf("Put(%s): %v", key, err)
			}
			want := licensehub.ObjectInfo{Key: key, Size: int64(len(c.data)), ContentType: c.wantCType, Metadata: c.opts.Metadata}
			objCheckInfo(t, "Put", written, want)
			want.ETag = written.ETag

			head, err := s.Head(t.Context(), key)
			if err != nil {
				t.Fatalf("Head(%s): %v", key, err)
			}
			objCheckInfo(t, "Head", head, want)

			got, info := objGet(t, s, key)
			objCheckInfo(t, "Get", info, want)
			if !bytes.Equal(got, c.data) {
				t.Errorf("Get(%s) = %d bytes %q..., want %d bytes %q...", key, len(got), objPrefixOf(got), len(c.data), objPrefixOf(c.data))
			}
		}
	}
}

func objPutOverwrites(t *testing.T, s licensehub.ObjectStore) {
	key := "overwrite/doc"
	versions := []struct {
		data []byte
		opts licensehub.PutOptions
	}{
		{[]byte("first"), licensehub.PutOptions{ContentType: "text/plain", Metadata: map[string]string{"rev": "1", "old": "yes"}}},
		{[]byte(`{"second":true}`), licensehub.PutOptions{ContentType: "application/json", Metadata: map[string]string{"rev": "2"}}},
		{[]byte("third, without metadata"), licensehub.PutOptions{}},
	}
	seen := map[string]bool{}
	for i, v := range versions {
		info := objPut(t, s, key, v.data, v.opts)
		if seen[info.ETag] {
			t.Errorf("version %d: ETag %q was already used by an earlier version", i+1, info.ETag)
		}
		seen[info.ETag] = true

		got, gi := objGet(t, s, key)
		if !bytes.Equal(got, v.data) {
			t.Errorf("version %d: Get = %q, want %q", i+1, got, v.data)
		}
		want := licensehub.ObjectInfo{Key: key, Size: int64(len(v.data)), ETag: info.ETag,
			ContentType: objDefaultType(v.opts.ContentType), Metadata: v.opts.Metadata}
		objCheckInfo(t, fmt.Sprintf("Get after version %d", i+1), gi, want)
	}
}

func objCreate(t *testing.T, s licensehub.ObjectStore) {
	ctx := t.Context()
	key := "create/license-1"
	first := []byte("the original")
	opts := licensehub.PutOptions{ContentType: "text/plain", Metadata: map[string]string{"who": "first"}}
	created, err := s.Create(ctx, key, bytes.NewReader(first), int64(len(first)), opts)
	if err != nil {
		t.Fatalf("Create(new key): %v", err)
	}
	objCheckInfo(t, "Create", created, licensehub.ObjectInfo{Key: key, Size: int64(len(first)), ContentType: "text/plain", Metadata: opts.Metadata})

	for _, kind := range objReaderKinds {
		second := []byte("an impostor, " + kind.name)
		r, size := kind.body(second)
		_, err := s.Create(ctx, key, r, size, licensehub.PutOptions{Metadata: map[string]string{"who": "second"}})
		objWantCode(t, fmt.Sprintf("Create(existing key, %s body)", kind.name), err, licensehub.ECONFLICT)
	}
	got, info := objGet(t, s, key)
	if !bytes.Equal(got, first) {
		t.Errorf("after refused Creates, Get = %q, want the original %q", got, first)
	}
	objCheckInfo(t, "Get after refused Creates", info, licensehub.ObjectInfo{
		Key: key, Size: int64(len(first)), ETag: created.ETag, ContentType: "text/plain", Metadata: opts.Metadata})

	// A key written by Put exists for Create too.
	objPut(t, s, "create/by-put", []byte("put"), licensehub.PutOptions{})
	_, err = s.Create(ctx, "create/by-put", strings.NewReader("create"), 6, licensehub.PutOptions{})
	objWantCode(t, "Create(key written by Put)", err, licensehub.ECONFLICT)

	// Put may still overwrite a created key, and a deleted key can be
	// created again.
	objPut(t, s, key, []byte("replaced"), licensehub.PutOptions{})
	if err := s.Delete(ctx, key); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := s.Create(ctx, key, strings.NewReader("reborn"), 6, licensehub.PutOptions{}); err != nil {
		t.Fatalf("Create(deleted key): %v", err)
	}
	if got, _ := objGet(t, s, key); string(got) != "reborn" {
		t.Errorf("Get after re-Create = %q, want %q", got, "reborn")
	}
}

func objCreateRace(t *testing.T, s licensehub.ObjectStore) {
	const writers = 100
	key := "race/create/once"
	bodies := make([][]byte, writers)
	for i := range bodies {
		bodies[i] = fmt.Appendf(nil, "writer %03d %s", i, strings.Repeat("x", i))
	}
	var (
		start     = make(chan struct{})
		wg        sync.WaitGroup
		mu        sync.Mutex
		winners   []int
		conflicts int
	)
	for i := range writers {
		wg.Go(func() {
			<-start
			_, err := s.Create(t.Context(), key, bytes.NewReader(bodies[i]), int64(len(bodies[i])),
				licensehub.PutOptions{Metadata: map[string]string{"writer": fmt.Sprint(i)}})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				winners = append(winners, i)
			case licensehub.IsCode(err, licensehub.ECONFLICT):
				conflicts++
			default:
				t.Errorf("writer %d: Create = %v, want nil or %s", i, err, licensehub.ECONFLICT)
			}
		})
	}
	close(start)
	wg.Wait()
	if len(winners) != 1 || conflicts != writers-1 {
		t.Fatalf("%d Creates racing: %d won %v and %d got %s; want exactly 1 and %d",
			writers, len(winners), winners, conflicts, licensehub.ECONFLICT, writers-1)
	}
	got, info := objGet(t, s, key)
	if w := winners[0]; !bytes.Equal(got, bodies[w]) || info.Metadata["writer"] != fmt.Sprint(w) {
		t.Errorf("content after the race = %q (writer %q), want the winner's %q (writer %d)",
			got, info.Metadata["writer"], bodies[w], w)
	}
}

func objConcurrentPuts(t *testing.T, s licensehub.ObjectStore) {
	const writers = 16
	key := "race/put/last-wins"
	bodies := make([][]byte, writers)
	for i := range bodies {
		bodies[i] = bytes.Repeat([]byte{'a' + byte(i)}, 1000+i*4000)
	}
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			if _, err := s.Put(t.Context(), key, objOpaque(bodies[i]), -1, licensehub.PutOptions{}); err != nil {
				t.Errorf("writer %d: Put: %v", i, err)
			}
		})
	}
	wg.Wait()
	got, info := objGet(t, s, key)
	if !slices.ContainsFunc(bodies, func(b []byte) bool { return bytes.Equal(b, got) }) {
		t.Fatalf("after %d concurrent Puts the content (%d bytes, %q...) is none of theirs: a torn write",
			writers, len(got), objPrefixOf(got))
	}
	if info.Size != int64(len(got)) {
		t.Errorf("Get reports Size %d for %d bytes of content", info.Size, len(got))
	}
}

// objConcurrentCreateDelete creates and deletes keys sharing a directory
// from many goroutines: a Delete that removes a directory left empty must
// never make a concurrent Create in it fail.
func objConcurrentCreateDelete(t *testing.T, s licensehub.ObjectStore) {
	const workers, rounds = 8, 15
	ctx := t.Context()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				key := fmt.Sprintf("churn/shared/deeper/w%d-r%d", w, r)
				if _, err := s.Create(ctx, key, strings.NewReader("x"), 1, licensehub.PutOptions{}); err != nil {
					t.Errorf("Create(%s): %v", key, err)
					return
				}
				if err := s.Delete(ctx, key); err != nil {
					t.Errorf("Delete(%s): %v", key, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if keys := objListKeys(t, s, "churn/"); len(keys) != 0 {
		t.Errorf("List(churn/) after deleting everything = %q, want nothing", keys)
	}
}

func objNotFound(t *testing.T, s licensehub.ObjectStore) {
	objPut(t, s, "nf/dir/obj", []byte("x"), licensehub.PutOptions{})
	for _, key := range []string{"nf/missing", "nf/dir", "nf/dir/obj/deeper", "nf/dir/ob", "never/written/at/all"} {
		_, _, err := s.Get(t.Context(), key)
		objWantCode(t, fmt.Sprintf("Get(%s)", key), err, licensehub.ENOTFOUND)
		_, err = s.Head(t.Context(), key)
		objWantCode(t, fmt.Sprintf("Head(%s)", key), err, licensehub.ENOTFOUND)
	}
}

func objDelete(t *testing.T, s licensehub.ObjectStore) {
	ctx := t.Context()
	objPut(t, s, "del/dir/a", []byte("a"), licensehub.PutOptions{})
	objPut(t, s, "del/dir/b", []byte("b"), licensehub.PutOptions{})
	if err := s.Delete(ctx, "del/dir/a"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	_, _, err := s.Get(ctx, "del/dir/a")
	objWantCode(t, "Get after Delete", err, licensehub.ENOTFOUND)
	_, err = s.Head(ctx, "del/dir/a")
	objWantCode(t, "Head after Delete", err, licensehub.ENOTFOUND)
	if got, _ := objGet(t, s, "del/dir/b"); string(got) != "b" {
		t.Errorf("the sibling of a deleted key reads %q, want %q", got, "b")
	}
	for _, key := range []string{"del/dir/a", "del/never-existed", "del/no/such/dir/x"} {
		if err := s.Delete(ctx, key); err != nil {
			t.Errorf("Delete(%s) of a missing key = %v, want nil", key, err)
		}
	}
	if err := s.Delete(ctx, "del/dir/b"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if keys := objListKeys(t, s, "del/"); len(keys) != 0 {
		t.Errorf("List(del/) after deleting everything = %q, want nothing", keys)
	}
	objPut(t, s, "del/dir/a", []byte("again"), licensehub.PutOptions{})
	if got, _ := objGet(t, s, "del/dir/a"); string(got) != "again" {
		t.Errorf("Get after Put of a deleted key = %q, want %q", got, "again")
	}
}

func objKeyAlphabet(t *testing.T, s licensehub.ObjectStore) {
	seg := strings.Repeat("s", 100)
	long := "long/" + strings.Join([]string{seg, seg, seg, seg}, "/") + "/"
	long += strings.Repeat("z", 512-len(long))
	keys := []string{
		"alpha/ABC-xyz_019.=tail",
		"alpha/..dots/x..y/...",
		"alpha/=/-/_",
		long, // 512 bytes: the longest valid key
	}
	for _, k := range keys {
		objPut(t, s, k, []byte(k), licensehub.PutOptions{})
		if got, _ := objGet(t, s, k); string(got) != k {
			t.Errorf("Get(%.40s...) = %.40q..., want the key itself", k, got)
		}
	}
	if got := objListKeys(t, s, ""); !slices.Equal(got, slices.Sorted(slices.Values(keys))) {
		t.Errorf("List() = %q, want %q", got, keys)
	}
	// Prefixes that end in "." or ".." are not paths, but keys start with them.
	for _, prefix := range []string{"alpha/.", "alpha/..", "alpha/..dots/x."} {
		if got, want := objListKeys(t, s, prefix), []string{"alpha/..dots/x..y/..."}; !slices.Equal(got, want) {
			t.Errorf("List(%q) = %q, want %q", prefix, got, want)
		}
	}
}

func objList(t *testing.T, s licensehub.ObjectStore) {
	objects := map[string]string{
		"docs/2024/jan.pdf": "january",
		"docs/2024/feb.pdf": "february, a little longer",
		"docs/2025/mar.pdf": "march",
		"docs/20.txt":       "twenty",
		"docs/19/old.pdf":   "nineteen",
		"docsx/a":           "not in docs/",
		"other/b":           "b",
	}
	infos := map[string]licensehub.ObjectInfo{}
	for k, v := range objects {
		infos[k] = objPut(t, s, k, []byte(v), licensehub.PutOptions{ContentType: "application/pdf"})
	}
	all := slices.Sorted(maps.Keys(objects))
	cases := []struct {
		prefix string
		want   []string
	}{
		{"", all},
		{"docs/", []string{"docs/19/old.pdf", "docs/20.txt", "docs/2024/feb.pdf", "docs/2024/jan.pdf", "docs/2025/mar.pdf"}},
		{"docs", []string{"docs/19/old.pdf", "docs/20.txt", "docs/2024/feb.pdf", "docs/2024/jan.pdf", "docs/2025/mar.pdf", "docsx/a"}},
		{"docs/20", []string{"docs/20.txt", "docs/2024/feb.pdf", "docs/2024/jan.pdf", "docs/2025/mar.pdf"}}, // ends mid-segment
		{"docs/202", []string{"docs/2024/feb.pdf", "docs/2024/jan.pdf", "docs/2025/mar.pdf"}},
		{"docs/2024/", []string{"docs/2024/feb.pdf", "docs/2024/jan.pdf"}},
		{"docs/2024/f", []string{"docs/2024/feb.pdf"}},
		{"docs/2024/feb.pdf", []string{"docs/2024/feb.pdf"}},
		{"docs/2024/feb.pdf/", nil},
		{"d", []string{"docs/19/old.pdf", "docs/20.txt", "docs/2024/feb.pdf", "docs/2024/jan.pdf", "docs/2025/mar.pdf", "docsx/a"}},
		{"nope/", nil},
		{"nope", nil},
		{"docs/2026/", nil},
		{"docs//", nil},
		{"/docs", nil},
		{"../", nil},
	}
	for _, c := range cases {
		var got []string
		err := s.List(t.Context(), c.prefix, func(info licensehub.ObjectInfo) error {
			got = append(got, info.Key)
			want, ok := infos[info.Key]
			switch {
			case !ok:
				t.Errorf("List(%q) reported %q, which was never written", c.prefix, info.Key)
			case info.Size != want.Size || info.ETag != want.ETag:
				t.Errorf("List(%q): %s has Size %d ETag %q, want %d %q", c.prefix, info.Key, info.Size, info.ETag, want.Size, want.ETag)
			case info.ModTime.IsZero():
				t.Errorf("List(%q): %s has no ModTime", c.prefix, info.Key)
			}
			return nil
		})
		if err != nil {
			t.Errorf("List(%q): %v", c.prefix, err)
			continue
		}
		slices.Sort(got)
		if !slices.Equal(got, c.want) {
			t.Errorf("List(%q) = %q, want %q", c.prefix, got, c.want)
		}
	}
}

func objListStopsAtError(t *testing.T, s licensehub.ObjectStore) {
	for i := range 5 {
		objPut(t, s, fmt.Sprintf("stop/k%d", i), []byte("x"), licensehub.PutOptions{})
	}
	errStop := errors.New("stop here")
	calls := 0
	err := s.List(t.Context(), "stop/", func(licensehub.ObjectInfo) error {
		calls++
		return fmt.Errorf("wrapped: %w", errStop)
	})
	if !errors.Is(err, errStop) {
		t.Errorf("List = %v, want the error fn returned", err)
	}
	if calls != 1 {
		t.Errorf("fn was called %d times after it failed, want 1 call", calls)
	}
}

func objListContextEnded(t *testing.T, s licensehub.ObjectStore) {
	for i := range 5 {
		objPut(t, s, fmt.Sprintf("lctx/k%d", i), []byte("x"), licensehub.PutOptions{})
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	calls := 0
	err := s.List(ctx, "lctx/", func(licensehub.ObjectInfo) error { calls++; return nil })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("List with a cancelled context = %v, want an error wrapping context.Canceled", err)
	}
	if calls != 0 {
		t.Errorf("List with a cancelled context called fn %d times", calls)
	}

	// Cancelled while listing: List stops before the next object.
	ctx, cancel = context.WithCancel(t.Context())
	defer cancel()
	calls = 0
	err = s.List(ctx, "lctx/", func(licensehub.ObjectInfo) error { calls++; cancel(); return nil })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("List cancelled by fn = %v, want an error wrapping context.Canceled", err)
	}
	if calls != 1 {
		t.Errorf("List cancelled in its first fn call went on to call fn %d times in all", calls)
	}
}

func objInvalidKeys(t *testing.T, s licensehub.ObjectStore) {
	ctx := t.Context()
	keys := []string{
		"", "../x", "x/../y", "x/..", "a//b", "a/./b", ".", "/abs", "trailing/",
		"with space", "tab\tkey", "ünicode", "star*", "back\\slash", "new\nline",
		strings.Repeat("k", 513), strings.Repeat("k", 600),
	}
	ops := []struct {
		name string
		call func(key string) error
	}{
		{"Put", func(k string) error {
			_, err := s.Put(ctx, k, strings.NewReader("x"), 1, licensehub.PutOptions{})
			return err
		}},
		{"Create", func(k string) error {
			_, err := s.Create(ctx, k, strings.NewReader("x"), 1, licensehub.PutOptions{})
			return err
		}},
		{"Get", func(k string) error {
			rc, _, err := s.Get(ctx, k)
			if rc != nil {
				rc.Close()
			}
			return err
		}},
		{"Head", func(k string) error { _, err := s.Head(ctx, k); return err }},
		{"Delete", func(k string) error { return s.Delete(ctx, k) }},
	}
	for _, key := range keys {
		for _, op := range ops {
			objWantCode(t, fmt.Sprintf("%s(%.30q)", op.name, key), op.call(key), licensehub.EINVALID)
		}
	}
	if got := objListKeys(t, s, ""); len(got) != 0 {
		t.Errorf("invalid keys left objects behind: %q", got)
	}
}

func objInvalidOptions(t *testing.T, s licensehub.ObjectStore) {
	cases := []struct {
		name string
		opts licensehub.PutOptions
	}{
		{"upper-case metadata key", licensehub.PutOptions{Metadata: map[string]string{"License-Id": "x"}}},
		{"underscore metadata key", licensehub.PutOptions{Metadata: map[string]string{"license_id": "x"}}},
		{"empty metadata key", licensehub.PutOptions{Metadata: map[string]string{"": "x"}}},
		{"newline in metadata value", licensehub.PutOptions{Metadata: map[string]string{"k": "a\nb"}}},
		{"non-ASCII metadata value", licensehub.PutOptions{Metadata: map[string]string{"k": "café"}}},
		{"padded metadata value", licensehub.PutOptions{Metadata: map[string]string{"k": " x "}}},
		{"too much metadata", licensehub.PutOptions{Metadata: map[string]string{"k": strings.Repeat("v", 3000)}}},
		{"newline in content type", licensehub.PutOptions{ContentType: "text/plain\r\nX-Evil: 1"}},
	}
	for i, c := range cases {
		key := fmt.Sprintf("badopts/%d", i)
		_, err := s.Put(t.Context(), key, strings.NewReader("x"), 1, c.opts)
		objWantCode(t, "Put with "+c.name, err, licensehub.EINVALID)
		_, err = s.Create(t.Context(), key, strings.NewReader("x"), 1, c.opts)
		objWantCode(t, "Create with "+c.name, err, licensehub.EINVALID)
	}
	if got := objListKeys(t, s, ""); len(got) != 0 {
		t.Errorf("refused writes left objects behind: %q", got)
	}
}

func objEmptyObject(t *testing.T, s licensehub.ObjectStore) {
	for _, kind := range objReaderKinds {
		for _, create := range []bool{false, true} {
			key := fmt.Sprintf("empty/%s/create=%t", kind.name, create)
			r, size := kind.body(nil)
			write := s.Put
			if create {
				write = s.Create
			}
			info, err := write(t.Context(), key, r, size, licensehub.PutOptions{})
			if err != nil {
				t.Fatalf("writing empty %s: %v", key, err)
			}
			want := licensehub.ObjectInfo{Key: key, Size: 0, ContentType: "application/octet-stream"}
			objCheckInfo(t, "write empty", info, want)
			want.ETag = info.ETag
			head, err := s.Head(t.Context(), key)
			if err != nil {
				t.Fatalf("Head(%s): %v", key, err)
			}
			objCheckInfo(t, "Head of empty", head, want)
			got, gi := objGet(t, s, key)
			objCheckInfo(t, "Get of empty", gi, want)
			if len(got) != 0 {
				t.Errorf("Get(%s) = %d bytes, want none", key, len(got))
			}
		}
	}
}

func objLargeUnknownSize(t *testing.T, s licensehub.ObjectStore) {
	data := make([]byte, 5<<20)
	rand.Read(data)
	for _, create := range []bool{false, true} {
		key := fmt.Sprintf("large/create=%t", create)
		write := s.Put
		if create {
			write = s.Create
		}
		info, err := write(t.Context(), key, objOpaque(data), -1, licensehub.PutOptions{ContentType: "application/zip"})
		if err != nil {
			t.Fatalf("writing 5 MiB of unknown size to %s: %v", key, err)
		}
		objCheckInfo(t, "write 5 MiB", info, licensehub.ObjectInfo{Key: key, Size: int64(len(data)), ContentType: "application/zip"})
		got, gi := objGet(t, s, key)
		if !bytes.Equal(got, data) {
			t.Errorf("Get(%s) returned %d bytes that differ from the %d written", key, len(got), len(data))
		}
		objCheckInfo(t, "Get 5 MiB", gi, licensehub.ObjectInfo{Key: key, Size: int64(len(data)), ETag: info.ETag, ContentType: "application/zip"})
	}
	_, err := s.Create(t.Context(), "large/create=true", objOpaque(data), -1, licensehub.PutOptions{})
	objWantCode(t, "Create of an existing key with a 5 MiB body of unknown size", err, licensehub.ECONFLICT)
}

// objBodyErrors: a body shorter than announced is refused with EINVALID,
// a failing body's error is returned, and neither leaves an object behind.
func objBodyErrors(t *testing.T, s licensehub.ObjectStore) {
	ctx := t.Context()
	for _, create := range []bool{false, true} {
		write := s.Put
		if create {
			write = s.Create
		}
		short := []byte("only ten b")
		for _, kind := range objReaderKinds[:2] { // the kinds with a size
			key := fmt.Sprintf("body/short-%s/create=%t", kind.name, create)
			r, _ := kind.body(short)
			_, err := write(ctx, key, r, 1000, licensehub.PutOptions{})
			objWantCode(t, fmt.Sprintf("writing %s: 10 bytes announced as 1000", key), err, licensehub.EINVALID)
			_, err = s.Head(ctx, key)
			objWantCode(t, "Head after a short body", err, licensehub.ENOTFOUND)
		}

		errBody := errors.New("client went away")
		for _, size := range []int64{1 << 20, -1} {
			key := fmt.Sprintf("body/failing-%d/create=%t", size, create)
			r := io.MultiReader(bytes.NewReader(make([]byte, 100<<10)), &objFailingReader{errBody})
			_, err := write(ctx, key, r, size, licensehub.PutOptions{})
			if !errors.Is(err, errBody) {
				t.Errorf("writing %s from a failing body = %v, want the body's error", key, err)
			}
			_, err = s.Head(ctx, key)
			objWantCode(t, "Head after a failing body", err, licensehub.ENOTFOUND)
		}
	}
}

type objFailingReader struct{ err error }

func (f *objFailingReader) Read([]byte) (int, error) { return 0, f.err }

// objContextEnded: every call fails with ETIMEOUT, wrapping the context's
// error, once its context is cancelled or past its deadline, and changes
// nothing.
func objContextEnded(t *testing.T, s licensehub.ObjectStore) {
	objPut(t, s, "ctx/existing", []byte("keep me"), licensehub.PutOptions{})
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	expired, cancel2 := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
	defer cancel2()

	for _, end := range []struct {
		ctx  context.Context
		want error
	}{{cancelled, context.Canceled}, {expired, context.DeadlineExceeded}} {
		ctx := end.ctx
		calls := []struct {
			name string
			call func() error
		}{
			{"Put(new)", func() error {
				_, err := s.Put(ctx, "ctx/new", strings.NewReader("x"), 1, licensehub.PutOptions{})
				return err
			}},
			{"Put(existing)", func() error {
				_, err := s.Put(ctx, "ctx/existing", strings.NewReader("overwritten"), 11, licensehub.PutOptions{})
				return err
			}},
			{"Create", func() error {
				_, err := s.Create(ctx, "ctx/new", strings.NewReader("x"), 1, licensehub.PutOptions{})
				return err
			}},
			{"Get", func() error {
				rc, _, err := s.Get(ctx, "ctx/existing")
				if rc != nil {
					rc.Close()
				}
				return err
			}},
			{"Head", func() error { _, err := s.Head(ctx, "ctx/existing"); return err }},
			{"Delete", func() error { return s.Delete(ctx, "ctx/existing") }},
			{"List", func() error {
				return s.List(ctx, "ctx/", func(licensehub.ObjectInfo) error { return nil })
			}},
		}
		for _, c := range calls {
			err := c.call()
			if !errors.Is(err, end.want) {
				t.Errorf("%s with an ended context (%v) = %v, want an error wrapping it", c.name, end.want, err)
			}
			objWantCode(t, c.name+" with an ended context", err, licensehub.ETIMEOUT)
		}
	}
	_, err := s.Head(t.Context(), "ctx/new")
	objWantCode(t, "Head of a key written with an ended context", err, licensehub.ENOTFOUND)
	if got, _ := objGet(t, s, "ctx/existing"); string(got) != "keep me" {
		t.Errorf("after calls with ended contexts, ctx/existing = %q, want %q", got, "keep me")
	}
}

// objCancelDuringBody cancels the context while the body is being read:
// the write fails and leaves no object behind.
func objCancelDuringBody(t *testing.T, s licensehub.ObjectStore) {
	const total = 4 << 20
	for _, size := range []int64{total, -1} {
		key := fmt.Sprintf("cancel/size=%d", size)
		ctx, cancel := context.WithCancel(t.Context())
		r := &objCancellingReader{cancelAfter: 1 << 20, remaining: total, cancel: cancel}
		_, err := s.Put(ctx, key, r, size, licensehub.PutOptions{})
		cancel()
		if err == nil {
			t.Errorf("Put(%s) cancelled during its body succeeded", key)
		}
		_, err = s.Head(t.Context(), key)
		objWantCode(t, "Head after a cancelled Put", err, licensehub.ENOTFOUND)
	}
}

// objCancellingReader yields remaining zero bytes and calls cancel once
// cancelAfter of them have been read.
type objCancellingReader struct {
	cancelAfter, read, remaining int
	cancel                       context.CancelFunc
}

func (c *objCancellingReader) Read(p []byte) (int, error) {
	if c.remaining == 0 {
		return 0, io.EOF
	}
	n := min(len(p), c.remaining)
	clear(p[:n])
	c.remaining -= n
	c.read += n
	if c.read >= c.cancelAfter {
		c.cancel()
	}
	return n, nil
}

func objPing(t *testing.T, s licensehub.ObjectStore) {
	p, ok := s.(licensehub.Pinger)
	if !ok {
		t.Fatalf("%T does not implement licensehub.Pinger; every backend must", s)
	}
	if err := p.Ping(t.Context()); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

// --- helpers ---------------------------------------------------------------

func objPut(t *testing.T, s licensehub.ObjectStore, key string, data []byte, opts licensehub.PutOptions) licensehub.ObjectInfo {
	t.Helper()
	info, err := s.Put(t.Context(), key, bytes.NewReader(data), int64(len(data)), opts)
	if err != nil {
		t.Fatalf("Put(%s): %v", key, err)
	}
	return info
}

func objGet(t *testing.T, s licensehub.ObjectStore, key string) ([]byte, licensehub.ObjectInfo) {
	t.Helper()
	rc, info, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%s): %v", key, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("reading %s: %v", key, err)
	}
	return data, info
}

func objListKeys(t *testing.T, s licensehub.ObjectStore, prefix string) []string {
	t.Helper()
	var keys []string
	err := s.List(t.Context(), prefix, func(info licensehub.ObjectInfo) error {
		keys = append(keys, info.Key)
		return nil
	})
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	slices.Sort(keys)
	return keys
}

// objCheckInfo compares got with want: Key, Size, ContentType and Metadata
// exactly, ETag when want has one (else it must be non-empty), and ModTime
// must be set.
func objCheckInfo(t *testing.T, what string, got, want licensehub.ObjectInfo) {
	t.Helper()
	if got.Key != want.Key {
		t.Errorf("%s: Key = %q, want %q", what, got.Key, want.Key)
	}
	if got.Size != want.Size {
		t.Errorf("%s %s: Size = %d, want %d", what, want.Key, got.Size, want.Size)
	}
	if got.ETag == "" || want.ETag != "" && got.ETag != want.ETag {
		t.Errorf("%s %s: ETag = %q, want %q", what, want.Key, got.ETag, cmp.Or(want.ETag, "non-empty"))
	}
	if got.ContentType != want.ContentType {
		t.Errorf("%s %s: ContentType = %q, want %q", what, want.Key, got.ContentType, want.ContentType)
	}
	if !maps.Equal(got.Metadata, want.Metadata) {
		t.Errorf("%s %s: Metadata = %v, want %v", what, want.Key, got.Metadata, want.Metadata)
	}
	if got.ModTime.IsZero() {
		t.Errorf("%s %s: ModTime is not set", what, want.Key)
	}
}

func objWantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if !licensehub.IsCode(err, code) {
		t.Errorf("%s = %v (code %q), want code %q", what, err, licensehub.ErrorCode(err), code)
	}
}

func objDefaultType(ct string) string { return cmp.Or(ct, "application/octet-stream") }

func objPrefixOf(b []byte) []byte { return b[:min(len(b), 32)] }
