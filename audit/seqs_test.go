package audit

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestSeqSet: adding numbers in any order keeps sorted, disjoint,
// non-adjacent ranges; through, top and missing agree with a plain set.
func TestSeqSet(t *testing.T) {
	for _, tc := range []struct {
		add              []uint64
		ranges           string
		through, top     uint64
		missingUpTo      uint64
		missing          string
		duplicateIgnored bool
	}{
		{nil, "", 0, 0, 3, "1..3", false},
		{[]uint64{1, 2, 3}, "1..3", 3, 3, 3, "", false},
		{[]uint64{3, 1, 2}, "1..3", 3, 3, 5, "4..5", false},
		{[]uint64{2, 5, 9, 4}, "2, 4..5, 9", 0, 9, 9, "1, 3, 6..8", false},
		{[]uint64{1, 3, 2, 2}, "1..3", 3, 3, 3, "", true},
	} {
		t.Run(fmt.Sprint(tc.add), func(t *testing.T) {
			var s seqSet
			dup := false
			for _, n := range tc.add {
				if !s.add(n) {
					dup = true
				}
			}
			if got := describeRanges(s.r); got != tc.ranges {
				t.Errorf("ranges %s, want %s", got, tc.ranges)
			}
			if s.through() != tc.through || s.top() != tc.top || dup != tc.duplicateIgnored {
				t.Errorf("through %d top %d dup %v, want %d %d %v", s.through(), s.top(), dup, tc.through, tc.top, tc.duplicateIgnored)
			}
			if got := describeRanges(s.missing(tc.missingUpTo)); got != tc.missing {
				t.Errorf("missing %s, want %s", got, tc.missing)
			}
		})
	}
	// Random orders against a map.
	rng := rand.New(rand.NewPCG(1, 2))
	for range 50 {
		var s seqSet
		in := map[uint64]bool{}
		for range 200 {
			n := rng.Uint64N(150) + 1
			if s.add(n) == in[n] {
				t.Fatalf("add(%d) disagrees with the map", n)
			}
			in[n] = true
		}
		for i := range s.r {
			if s.r[i].from > s.r[i].to || i > 0 && s.r[i].from <= s.r[i-1].to+1 {
				t.Fatalf("ranges %v are not sorted and disjoint", s.r)
			}
		}
		for n := uint64(1); n <= 151; n++ {
			if s.has(n) != in[n] {
				t.Fatalf("has(%d) = %v", n, s.has(n))
			}
		}
	}
}

// FuzzSealedSeqs: whatever parses as sealed-seqs.json encodes and parses
// back to the same ranges.
func FuzzSealedSeqs(f *testing.F) {
	f.Add([]byte(`{"segment":3,"instances":{"hub-a":[[1,5],[7,7]]}}`))
	f.Add([]byte(`{"segment":0,"instances":{}}`))
	f.Add([]byte(`{"segment":1,"instances":{"x":[[2,1]]}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := parseSealedSeqs(b)
		if err != nil {
			return
		}
		out, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		s2, err := parseSealedSeqs(out)
		if err != nil {
			t.Fatalf("re-parse %s: %v", out, err)
		}
		if s.segment != s2.segment || len(s.m) != len(s2.m) {
			t.Fatalf("round trip changed %s", out)
		}
		for id, x := range s.m {
			if !slices.Equal(x.r, s2.m[id].r) {
				t.Fatalf("round trip changed instance %s", id)
			}
		}
	})
}
