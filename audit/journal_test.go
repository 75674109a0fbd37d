package audit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/licensehub/licensehub"
)

// journals are the implementations every journal test runs on.
var journals = []struct {
	name string
	open func(t *testing.T) Journal
}{
	{"file", func(t *testing.T) Journal {
		j, err := OpenFileJournal(t.TempDir())
		if err != nil {
			t.Fatalf("OpenFileJournal: %v", err)
		}
		t.Cleanup(func() { _ = j.Close() })
		return j
	}},
	{"file-small-files", func(t *testing.T) Journal {
		// Tiny files: every few entries start a new file.
		j, err := openFileJournal(t.TempDir(), 100, time.Now)
		if err != nil {
			t.Fatalf("openFileJournal: %v", err)
		}
		t.Cleanup(func() { _ = j.Close() })
		return j
	}},
	{"stream-memory", func(t *testing.T) Journal { return NewStreamJournal(openMem(t), "audit:journal") }},
	{"stream-redis", func(t *testing.T) Journal { return NewStreamJournal(openRedis(t), "audit:journal") }},
}

func TestJournal(t *testing.T) {
	for _, jc := range journals {
		t.Run(jc.name, func(t *testing.T) {
			t.Parallel()
			t.Run("AppendReadTrim", func(t *testing.T) { journalAppendReadTrim(t, jc.open(t)) })
			t.Run("Concurrent", func(t *testing.T) { journalConcurrent(t, jc.open(t)) })
			t.Run("Invalid", func(t *testing.T) { journalInvalid(t, jc.open(t)) })
		})
	}
}

func journalAppendReadTrim(t *testing.T, j Journal) {
	ctx := t.Context()
	if es, err := j.Read(ctx, "", 10); err != nil || len(es) != 0 {
		t.Fatalf("Read(empty journal) = %v, %v; want nothing", es, err)
	}
	var ids []string
	for i := range 8 {
		id, err := j.Append(ctx, []byte("entry-"+strconv.Itoa(i)))
		if err != nil {
			t.Fatalf("Append #%d: %v", i, err)
		}
		if len(ids) > 0 {
			if c, ok := compareJournalIDs(ids[len(ids)-1], id); !ok || c >= 0 {
				t.Fatalf("Append returned %s after %s: IDs must strictly increase", id, ids[len(ids)-1])
			}
		}
		ids = append(ids, id)
	}
	cases := []struct {
		name  string
		after string
		n     int
		want  []int
	}{
		{"all", "", 0, []int{0, 1, 2, 3, 4, 5, 6, 7}},
		{"from 0", "0", 3, []int{0, 1, 2}},
		{"after first", ids[0], 2, []int{1, 2}},
		{"after middle", ids[4], 0, []int{5, 6, 7}},
		{"after last", ids[7], 5, nil},
		{"after an ID beyond the last", "99999999999999-0", 5, nil},
	}
	for _, tc := range cases {
		es, err := j.Read(ctx, tc.after, tc.n)
		if err != nil {
			t.Fatalf("%s: Read: %v", tc.name, err)
		}
		var got []int
		for _, e := range es {
			i := slices.Index(ids, e.ID)
			if i < 0 || string(e.Data) != "entry-"+strconv.Itoa(i) {
				t.Fatalf("%s: entry %s = %q is not one appended", tc.name, e.ID, e.Data)
			}
			got = append(got, i)
		}
		if !slices.Equal(got, tc.want) {
			t.Fatalf("%s: Read(after %q, %d) = entries %v, want %v", tc.name, tc.after, tc.n, got, tc.want)
		}
	}
	// A second read after the same position (the file journal remembers
	// positions) returns the same.
	for range 2 {
		es, err := j.Read(ctx, ids[2], 2)
		if err != nil || len(es) != 2 || es[0].ID != ids[3] || es[1].ID != ids[4] {
			t.Fatalf("Read(after %s, 2) = %v, %v; want %s, %s", ids[2], es, err, ids[3], ids[4])
		}
	}

	// Trim through an entry: it and everything before go, the rest stays.
	for _, step := range []struct {
		through string
		left    int // first index left
	}{
		{"", 0},
		{ids[2], 3},
		{ids[1], 3}, // already trimmed: no error, no change
		{ids[7], 8},
	} {
		if err := j.Trim(ctx, step.through); err != nil {
			t.Fatalf("Trim(%q): %v", step.through, err)
		}
		es, err := j.Read(ctx, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		// The file journal trims whole files only: entries up to the
		// trimmed ID may still be read from the start, never later ones
		// lost.
		var got []string
		for _, e := range es {
			got = append(got, e.ID)
		}
		if !slices.Equal(got[max(len(got)-(8-step.left), 0):], ids[step.left:]) || len(got) > 8 {
			t.Fatalf("after Trim(%q): Read = %v, want (at least) %v", step.through, got, ids[step.left:])
		}
		if _, isStream := j.(*StreamJournal); isStream && len(got) != 8-step.left {
			t.Fatalf("after Trim(%q): stream holds %v, want exactly %v", step.through, got, ids[step.left:])
		}
		if step.left > 0 {
			if es, err := j.Read(ctx, ids[step.left-1], 0); err != nil || len(es) != 8-step.left {
				t.Fatalf("after Trim(%q): Read(after %s) = %d entries, %v; want %d", step.through, ids[step.left-1], len(es), err, 8-step.left)
			}
		}
	}
	// A journal trimmed empty keeps its IDs increasing.
	id, err := j.Append(ctx, []byte("after trim"))
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := compareJournalIDs(ids[7], id); !ok || c >= 0 {
		t.Fatalf("Append after trimming everything = %s, not after %s", id, ids[7])
	}
	es, err := j.Read(ctx, ids[7], 0)
	if err != nil || len(es) != 1 || es[0].ID != id || string(es[0].Data) != "after trim" {
		t.Fatalf("Read after the trimmed end = %v, %v; want only %s", es, err, id)
	}
}

// journalConcurrent appends from many goroutines at once (group commit in
// the file journal): every ID is unique and Read returns every entry once,
// in ID order.
func journalConcurrent(t *testing.T, j Journal) {
	ctx := t.Context()
	const writers, each = 8, 25
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		seen = map[string]string{}
		errs = make([]error, writers)
	)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				data := fmt.Sprintf("w%d-%d", w, i)
				id, err := j.Append(ctx, []byte(data))
				if err != nil {
					errs[w] = err
					return
				}
				mu.Lock()
				if _, dup := seen[id]; dup {
					errs[w] = fmt.Errorf("ID %s returned twice", id)
				}
				seen[id] = data
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	var all []Entry
	for after := ""; ; {
		es, err := j.Read(ctx, after, 7)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) == 0 {
			break
		}
		all = append(all, es...)
		after = es[len(es)-1].ID
	}
	if len(all) != writers*each {
		t.Fatalf("paged Read returned %d entries, want %d", len(all), writers*each)
	}
	for i, e := range all {
		if seen[e.ID] != string(e.Data) {
			t.Fatalf("entry %s = %q, Append stored %q under it", e.ID, e.Data, seen[e.ID])
		}
		if i > 0 {
			if c, _ := compareJournalIDs(all[i-1].ID, e.ID); c >= 0 {
				t.Fatalf("Read order: %s then %s", all[i-1].ID, e.ID)
			}
		}
	}
}

func journalInvalid(t *testing.T, j Journal) {
	ctx := t.Context()
	if _, err := j.Append(ctx, nil); !licensehub.IsCode(err, licensehub.EINVALID) {
		t.Errorf("Append(empty) = %v, want %s", err, licensehub.EINVALID)
	}
	for _, bad := range []string{"x", "1-", "-1", "1.5-0"} {
		if _, err := j.Read(ctx, bad, 0); !licensehub.IsCode(err, licensehub.EINVALID) {
			t.Errorf("Read(after %q) = %v, want %s", bad, err, licensehub.EINVALID)
		}
		if err := j.Trim(ctx, bad); !licensehub.IsCode(err, licensehub.EINVALID) {
			t.Errorf("Trim(%q) = %v, want %s", bad, err, licensehub.EINVALID)
		}
	}
}

// TestFileJournalRestart reopens a journal: its entries are still there,
// and new IDs are after the old ones even when the clock went back.
func TestFileJournalRestart(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	clock := &syncedClock{t: time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)}
	j, err := openFileJournal(dir, 200, clock.now)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 10 {
		id, err := j.Append(ctx, []byte("e"+strconv.Itoa(i)))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Append(ctx, []byte("x")); !licensehub.IsCode(err, licensehub.EUNAVAILABLE) {
		t.Fatalf("Append after Close = %v, want %s", err, licensehub.EUNAVAILABLE)
	}

	clock.set(clock.now().Add(-time.Hour)) // the clock steps back
	j, err = openFileJournal(dir, 200, clock.now)
	if err != nil {
		t.Fatal(err)
	}
	es, err := j.Read(ctx, "", 0)
	if err != nil || len(es) != 10 || es[9].ID != ids[9] {
		t.Fatalf("Read after reopening = %d entries, %v; want the 10 appended", len(es), err)
	}
	id, err := j.Append(ctx, []byte("later"))
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := compareJournalIDs(ids[9], id); c >= 0 {
		t.Fatalf("Append after reopening with the clock an hour back = %s, not after %s", id, ids[9])
	}

	// Trimmed empty, closed and reopened: IDs still go on.
	if err := j.Trim(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	names, _ := filepath.Glob(filepath.Join(dir, "*"+journalExt))
	if len(names) != 1 {
		t.Fatalf("after trimming everything %d journal files remain (%v), want 1 empty file", len(names), names)
	}
	j, err = openFileJournal(dir, 200, clock.now)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if es, err := j.Read(ctx, "", 0); err != nil || len(es) != 0 {
		t.Fatalf("Read after trimming everything and reopening = %v, %v; want nothing", es, err)
	}
	id2, err := j.Append(ctx, []byte("again"))
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := compareJournalIDs(id, id2); c >= 0 {
		t.Fatalf("Append after reopening an emptied journal = %s, not after %s", id2, id)
	}
}

// TestFileJournalTornTail cuts an incomplete write off the end, and
// refuses a journal whose older file is corrupt.
func TestFileJournalTornTail(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	j, err := openFileJournal(dir, 100, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if _, err := j.Append(ctx, []byte("entry-"+strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	names, _ := filepath.Glob(filepath.Join(dir, "*"+journalExt))
	slices.Sort(names)
	if len(names) < 2 {
		t.Fatalf("want several journal files, got %v", names)
	}

	// A torn frame at the end of the newest file.
	last := names[len(names)-1]
	torn := appendFrame(nil, journalID{ms: 1 << 50}, []byte("never acknowledged"))
	f, err := os.OpenFile(last, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(torn[:len(torn)-3]); err != nil {
		t.Fatal(err)
	}
	f.Close()
	j, err = OpenFileJournal(dir)
	if err != nil {
		t.Fatalf("OpenFileJournal with a torn tail: %v", err)
	}
	if got := j.TornTail(); got != int64(len(torn)-3) {
		t.Fatalf("TornTail = %d, want %d", got, len(torn)-3)
	}
	es, err := j.Read(ctx, "", 0)
	if err != nil || len(es) != 10 {
		t.Fatalf("Read after recovery = %d entries, %v; want 10", len(es), err)
	}
	if _, err := j.Append(ctx, []byte("after recovery")); err != nil {
		t.Fatal(err)
	}
	if es, err := j.Read(ctx, es[9].ID, 0); err != nil || len(es) != 1 || string(es[0].Data) != "after recovery" {
		t.Fatalf("Read after the recovered end = %v, %v", es, err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}

	// A flipped byte in an older file is corruption, not a torn write.
	b, err := os.ReadFile(names[0])
	if err != nil {
		t.Fatal(err)
	}
	b[frameHeader+2] ^= 0xff
	if err := os.WriteFile(names[0], b, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = OpenFileJournal(dir)
	if !licensehub.IsCode(err, licensehub.EUNAVAILABLE) || !contains(err.Error(), filepath.Base(names[0])) || !contains(err.Error(), "corrupt at byte 0") {
		t.Fatalf("OpenFileJournal with a corrupt older file = %v; want %s naming %s at byte 0", err, licensehub.EUNAVAILABLE, filepath.Base(names[0]))
	}
}

// TestFileJournalSingleProcess: a second open of the same directory fails
// while the first is open.
func TestFileJournalSingleProcess(t *testing.T) {
	dir := t.TempDir()
	j, err := OpenFileJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	if j2, err := OpenFileJournal(dir); !licensehub.IsCode(err, licensehub.EUNAVAILABLE) {
		if j2 != nil {
			j2.Close()
		}
		t.Fatalf("second OpenFileJournal = %v, want %s", err, licensehub.EUNAVAILABLE)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j, err = OpenFileJournal(dir)
	if err != nil {
		t.Fatalf("OpenFileJournal after Close: %v", err)
	}
	j.Close()
}

// TestFileJournalTrimFiles checks that Trim deletes whole files, never
// the one holding untrimmed entries.
func TestFileJournalTrimFiles(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	j, err := openFileJournal(dir, 100, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	var ids []string
	for i := range 20 {
		id, err := j.Append(ctx, []byte("entry-"+strconv.Itoa(i)))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	count := func() int {
		names, _ := filepath.Glob(filepath.Join(dir, "*"+journalExt))
		return len(names)
	}
	before := count()
	if err := j.Trim(ctx, ids[9]); err != nil {
		t.Fatal(err)
	}
	after := count()
	if after >= before {
		t.Fatalf("Trim through the 10th of 20 entries left %d of %d files", after, before)
	}
	es, err := j.Read(ctx, ids[9], 0)
	if err != nil || len(es) != 10 {
		t.Fatalf("Read after Trim = %d entries, %v; want 10", len(es), err)
	}
	es, err = j.Read(ctx, "", 0)
	if err != nil || len(es) < 10 || es[len(es)-10].ID != ids[10] {
		t.Fatalf("Read from the start after Trim = %d entries, %v; want the last 10 at least", len(es), err)
	}
}
