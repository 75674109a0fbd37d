package fs

// The shared contract (store/storetest) runs in store/objects_contract_test.go;
// these tests cover what is particular to the filesystem: the on-disk
// layout, key collisions, crash leftovers and writers in other processes.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/licensehub/licensehub"
)

func open(t *testing.T) (*Store, string) {
	t.Helper()
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s, dir
}

func put(t *testing.T, s *Store, key, data string) licensehub.ObjectInfo {
	t.Helper()
	info, err := s.Put(t.Context(), key, strings.NewReader(data), int64(len(data)), licensehub.PutOptions{})
	if err != nil {
		t.Fatalf("Put(%s): %v", key, err)
	}
	return info
}

func read(t *testing.T, s *Store, key string) string {
	t.Helper()
	rc, _, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%s): %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return string(b)
}

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if !licensehub.IsCode(err, code) {
		t.Errorf("%s = %v, want code %s", what, err, code)
	}
}

func TestFileFormat(t *testing.T) {
	s, dir := open(t)
	opts := licensehub.PutOptions{ContentType: "text/plain", Metadata: map[string]string{"license-id": "L-7"}}
	info, err := s.Put(t.Context(), "docs/a.txt", strings.NewReader("line one\nline two\n"), -1, opts)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "objects", "docs", "a.txt"))
	if err != nil {
		t.Fatalf("the object is not at objects/<key>: %v", err)
	}
	want := `{"etag":"` + info.ETag + `","v":1,"contentType":"text/plain","metadata":{"license-id":"L-7"}}` + "\nline one\nline two\n"
	if string(raw) != want {
		t.Errorf("object file =\n%s\nwant\n%s", raw, want)
	}
	if sum := sha256.Sum256([]byte("line one\nline two\n")); info.ETag != hex.EncodeToString(sum[:]) {
		t.Errorf("ETag %q is not the hex SHA-256 of the content", info.ETag)
	}
	entries, err := os.ReadDir(filepath.Join(dir, ".tmp"))
	if err != nil || len(entries) != 0 {
		t.Errorf("temp directory after a write: %v entries, err %v; want empty", len(entries), err)
	}
}

func TestKeyCollisions(t *testing.T) {
	s, _ := open(t)
	ctx := t.Context()
	put(t, s, "a", "parent object")
	put(t, s, "x/y", "child object")

	for _, key := range []string{"a/b", "a/b/c", "x"} {
		_, err := s.Put(ctx, key, strings.NewReader("z"), 1, licensehub.PutOptions{})
		wantCode(t, "Put("+key+")", err, licensehub.EINVALID)
		// Not ECONFLICT: that would tell a caller its object exists.
		_, err = s.Create(ctx, key, strings.NewReader("z"), 1, licensehub.PutOptions{})
		wantCode(t, "Create("+key+")", err, licensehub.EINVALID)
	}
	for _, key := range []string{"a/b", "x"} {
		_, err := s.Head(ctx, key)
		wantCode(t, "Head("+key+")", err, licensehub.ENOTFOUND)
		_, _, err = s.Get(ctx, key)
		wantCode(t, "Get("+key+")", err, licensehub.ENOTFOUND)
		if err := s.Delete(ctx, key); err != nil {
			t.Errorf("Delete(%s) = %v, want nil (no such object)", key, err)
		}
	}
	if got := read(t, s, "a"); got != "parent object" {
		t.Errorf("a = %q after refused writes", got)
	}
	if got := read(t, s, "x/y"); got != "child object" {
		t.Errorf("x/y = %q after refused writes", got)
	}

	// Once the child is gone, its directory is pruned and the parent key
	// becomes writable.
	if err := s.Delete(ctx, "x/y"); err != nil {
		t.Fatal(err)
	}
	put(t, s, "x", "now an object")
}

func TestDeletePrunesEmptyDirectories(t *testing.T) {
	s, dir := open(t)
	put(t, s, "p/q/r/one", "1")
	put(t, s, "p/two", "2")
	if err := s.Delete(t.Context(), "p/q/r/one"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "objects", "p", "q")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("objects/p/q after deleting its only object: %v, want it gone", err)
	}
	if err := s.Delete(t.Context(), "p/two"); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "objects"))
	if len(entries) != 0 {
		t.Errorf("objects/ after deleting everything has %d entries", len(entries))
	}
}

func TestEmptyDirectoryInTheWay(t *testing.T) {
	s, dir := open(t)
	// A directory a Delete emptied but has not pruned yet.
	if err := os.MkdirAll(filepath.Join(dir, "objects", "k"), 0o750); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(t.Context(), "k", strings.NewReader("v"), 1, licensehub.PutOptions{}); err != nil {
		t.Fatalf("Create over an empty directory: %v", err)
	}
	if got := read(t, s, "k"); got != "v" {
		t.Errorf("k = %q", got)
	}
}

func TestOpenRemovesStaleTempFiles(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(dir); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, ".tmp", "obj-stale")
	fresh := filepath.Join(dir, ".tmp", "obj-fresh")
	for _, p := range []string{stale, fresh} {
		if err := os.WriteFile(p, []byte("half written"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * staleTempAge)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale temp file survived Open: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("a temp file that may belong to a live writer was removed: %v", err)
	}
	var n int
	if err := s.List(t.Context(), "", func(licensehub.ObjectInfo) error { n++; return nil }); err != nil || n != 0 {
		t.Errorf("List sees %d objects (err %v); temp files must never be listed", n, err)
	}
}

func TestCorruptFile(t *testing.T) {
	s, dir := open(t)
	put(t, s, "c/ok", "fine")
	for name, content := range map[string]string{
		"no-header":   "just bytes, no newline",
		"bad-json":    "{not json\ncontent",
		"bad-version": `{"etag":"` + strings.Repeat("a", 64) + `","v":9,"contentType":"x"}` + "\n",
		"no-etag":     `{"v":1}` + "\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, "objects", "c", name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := s.Head(t.Context(), "c/"+name)
		wantCode(t, "Head of a corrupt file "+name, err, licensehub.EUNAVAILABLE)
		_, _, err = s.Get(t.Context(), "c/"+name)
		wantCode(t, "Get of a corrupt file "+name, err, licensehub.EUNAVAILABLE)
	}
}

func TestGetReaderHonoursContext(t *testing.T) {
	s, _ := open(t)
	put(t, s, "big", strings.Repeat("x", 1<<20))
	ctx, cancel := context.WithCancel(t.Context())
	rc, _, err := s.Get(ctx, "big")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := rc.Read(make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	cancel()
	_, err = io.ReadAll(rc)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("reading after the context ended = %v, want context.Canceled", err)
	}
	if err := rc.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func TestClosedStore(t *testing.T) {
	s, _ := open(t)
	put(t, s, "k", "v")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := s.Head(t.Context(), "k")
	wantCode(t, "Head after Close", err, licensehub.EUNAVAILABLE)
	wantCode(t, "Ping after Close", s.Ping(t.Context()), licensehub.EUNAVAILABLE)
}

func TestPingFailsWithoutDirectory(t *testing.T) {
	s, dir := open(t)
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "Ping with the directory gone", s.Ping(t.Context()), licensehub.EUNAVAILABLE)
}

func TestOpenInvalid(t *testing.T) {
	_, err := Open("")
	wantCode(t, `Open("")`, err, licensehub.EINVALID)
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Open(file)
	wantCode(t, "Open(a regular file)", err, licensehub.EUNAVAILABLE)
}

func TestSegmentTooLong(t *testing.T) {
	s, _ := open(t)
	_, err := s.Put(t.Context(), "x/"+strings.Repeat("s", 300), strings.NewReader("v"), 1, licensehub.PutOptions{})
	wantCode(t, "Put with a 300-byte segment", err, licensehub.EINVALID)
}

// TestCreateAcrossProcesses races Create on one key from several processes
// sharing the directory (and several goroutines in each): exactly one wins.
func TestCreateAcrossProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	const procs, perProc = 4, 10
	dir := t.TempDir()
	if _, err := Open(dir); err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(500 * time.Millisecond) // a common start line
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins []string
		outs []string
	)
	for p := range procs {
		wg.Go(func() {
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestHelperCreateRace$", "-test.count=1")
			cmd.Env = append(os.Environ(),
				"FS_HELPER_DIR="+dir,
				"FS_HELPER_ID="+strconv.Itoa(p),
				"FS_HELPER_N="+strconv.Itoa(perProc),
				"FS_HELPER_START="+strconv.FormatInt(start.UnixNano(), 10))
			out, err := cmd.CombinedOutput()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Errorf("helper %d: %v\n%s", p, err, out)
			}
			outs = append(outs, string(out))
			sc := bufio.NewScanner(bytes.NewReader(out))
			for sc.Scan() {
				if w, ok := strings.CutPrefix(sc.Text(), "WON "); ok {
					wins = append(wins, w)
				}
			}
		})
	}
	wg.Wait()
	if len(wins) != 1 {
		t.Fatalf("%d processes × %d goroutines raced Create: winners %q, want exactly one\n%s",
			procs, perProc, wins, strings.Join(outs, "\n"))
	}
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := read(t, s, "shared/once"); got != wins[0] {
		t.Errorf("content %q, want the winner's %q", got, wins[0])
	}
}

// TestHelperCreateRace is the child of TestCreateAcrossProcesses; it does
// nothing in a normal run.
func TestHelperCreateRace(t *testing.T) {
	dir := os.Getenv("FS_HELPER_DIR")
	if dir == "" {
		t.Skip("helper process for TestCreateAcrossProcesses")
	}
	n, _ := strconv.Atoi(os.Getenv("FS_HELPER_N"))
	startNs, _ := strconv.ParseInt(os.Getenv("FS_HELPER_START"), 10, 64)
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(time.Unix(0, startNs)))
	var wg sync.WaitGroup
	for g := range n {
		wg.Go(func() {
			body := fmt.Sprintf("process %s goroutine %d", os.Getenv("FS_HELPER_ID"), g)
			_, err := s.Create(context.Background(), "shared/once", strings.NewReader(body), int64(len(body)), licensehub.PutOptions{})
			switch {
			case err == nil:
				fmt.Println("WON " + body)
			case !licensehub.IsCode(err, licensehub.ECONFLICT):
				t.Errorf("Create: %v", err)
			}
		})
	}
	wg.Wait()
}
