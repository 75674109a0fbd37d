package publicsecurity

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/adapters"
	"github.com/licensehub/licensehub/adapters/sim"
	"github.com/licensehub/licensehub/adapters/sim/simtest"
	"github.com/licensehub/licensehub/adapters/upstream"
	"github.com/licensehub/licensehub/ident"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func setup(t *testing.T) (*sim.Server, *upstream.Client) {
	t.Helper()
	return simtest.Start(t, sim.Config{Seed: 77}, Upstream, nil)
}

func fetch(t *testing.T, c *upstream.Client, kind string, params map[string]string) (*adapters.Answer, error) {
	t.Helper()
	k, ok := adapters.FindKind(Kinds(), kind)
	if !ok {
		t.Fatalf("no kind %s", kind)
	}
	return adapters.Fetch(context.Background(), c, k, params, time.Now())
}

func TestKindsValidate(t *testing.T) {
	for _, k := range Kinds() {
		if err := k.Validate(); err != nil {
			t.Errorf("%s: %v", k.Name, err)
		}
	}
}

// TestIdentity: a check (核验), not a query: the certificate echoes what
// was asked and carries the verdicts; on a match also the document's
// expiry and the person's status; never the record's name, birth date,
// address or anything else.
func TestIdentity(t *testing.T) {
	s, c := setup(t)
	id := s.SamplePeople(1)[0]
	real := s.PersonName(id)
	if real == "" {
		t.Fatal("the simulator knows no name for its own sample")
	}
	for _, tc := range []struct {
		name       string
		asked      string
		mismatched []string
		fields     []string
	}{
		{"wrong name", "不是这个名字", []string{"name"}, []string{"id_number", "id_number_match", "name", "name_match"}},
		{"right name", real, nil, []string{"document_valid_until", "id_number", "id_number_match", "name", "name_match", "status"}},
		{"right name, padded", " " + real + " ", nil, []string{"document_valid_until", "id_number", "id_number_match", "name", "name_match", "status"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := fetch(t, c, KindIdentity, map[string]string{"id_number": id, "name": tc.asked})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(a.Mismatched, tc.mismatched) {
				t.Errorf("mismatched %v, want %v", a.Mismatched, tc.mismatched)
			}
			if got := slices.Sorted(maps.Keys(a.Data)); !slices.Equal(got, tc.fields) {
				t.Errorf("fields %v, want %v (data %v)", got, tc.fields, a.Data)
			}
			match := tc.mismatched == nil
			if a.Data["id_number"] != id || a.Data["name"] != strings.TrimSpace(tc.asked) || a.Data["id_number_match"] != true || a.Data["name_match"] != match {
				t.Errorf("data %v", a.Data)
			}
			birth, _ := ident.ResidentIDBirthDate(id)
			for _, v := range a.Data {
				if s := fmt.Sprint(v); !match && s == real || strings.Contains(s, birth.Format(time.DateOnly)) {
					t.Errorf("the certificate discloses %q: %v", s, a.Data)
				}
			}
		})
	}
}

func TestHousehold(t *testing.T) {
	s, c := setup(t)
	id := s.SamplePeople(2)[1]
	a, err := fetch(t, c, KindHousehold, map[string]string{"id_number": id})
	if err != nil {
		t.Fatal(err)
	}
	got := a.Data
	members, ok := got["members"].([]any)
	if !ok || len(members) == 0 || got["member_count"] != int64(len(members)) {
		t.Fatalf("household %v", got)
	}
	head := members[0].(map[string]any)
	if head["relation"] != "户主" || head["name"] != got["head_name"] || !strings.Contains(head["id_number"].(string), "****") {
		t.Errorf("head %v / %v", head, got)
	}
	for _, f := range []string{"household_number", "address", "head_id_number"} {
		if v, ok := got[f].(string); !ok || v == "" {
			t.Errorf("%s = %#v", f, got[f])
		}
	}
}

func TestNotFound(t *testing.T) {
	s, c := setup(t)
	var id string
	for seq := 0; id == ""; seq++ {
		body := fmt.Sprintf("43010419800101%03d", seq)
		ch, _ := ident.ResidentIDCheck(body)
		if cand := body + string(ch); !s.Exists(cand) {
			id = cand
		}
	}
	a, err := fetch(t, c, KindHousehold, map[string]string{"id_number": id})
	if a != nil || !licensehub.IsCode(err, licensehub.ENOTFOUND) {
		t.Errorf("unknown person: %v, %v", a, err)
	}
	if strings.Contains(licensehub.Message(err), "person not found") {
		t.Errorf("the upstream's own words reached the error: %v", err)
	}
}

func TestMalformedAnswer(t *testing.T) {
	s, c := setup(t)
	id := s.SamplePeople(1)[0]
	for _, kind := range []string{"partial", "truncated", "html"} {
		if err := s.SetKnobs(sim.Knobs{MalformedRate: 1, Malformed: kind}); err != nil {
			t.Fatal(err)
		}
		a, err := fetch(t, c, KindIdentity, map[string]string{"id_number": id, "name": "张三"})
		if a != nil || !licensehub.IsCode(err, licensehub.EUPSTREAMBAD) {
			t.Errorf("%s: %v, %v", kind, a, err)
		}
	}
}
