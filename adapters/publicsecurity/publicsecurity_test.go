package publicsecurity

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/licensehub/licensehub"
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

func TestKindsValidate(t *testing.T) {
	for _, k := range Kinds() {
		if err := k.Validate(); err != nil {
			t.Errorf("%s: %v", k.Name, err)
		}
	}
}

func TestIdentity(t *testing.T) {
	s, c := setup(t)
	id := s.SamplePeople(1)[0]
	got, err := Identity(context.Background(), c, id, "不是这个名字")
	if err != nil {
		t.Fatal(err)
	}
	if got["id_number"] != id || got["id_number_match"] != true || got["name_match"] != false {
		t.Errorf("identity %v", got)
	}
	for _, f := range []string{"name", "sex", "birth_date", "nation", "address", "document_issuer", "document_valid_from",
		"document_valid_until", "document_status", "status"} {
		if v, ok := got[f].(string); !ok || v == "" {
			t.Errorf("%s = %#v", f, got[f])
		}
	}
	birth, _ := ident.ResidentIDBirthDate(id)
	if got["birth_date"] != birth.Format(time.DateOnly) {
		t.Errorf("birth_date %v, ID says %s", got["birth_date"], birth.Format(time.DateOnly))
	}
	got, err = Identity(context.Background(), c, id, got["name"].(string))
	if err != nil || got["name_match"] != true {
		t.Errorf("with the right name: %v %v", got, err)
	}
}

func TestHousehold(t *testing.T) {
	s, c := setup(t)
	id := s.SamplePeople(2)[1]
	got, err := Household(context.Background(), c, id)
	if err != nil {
		t.Fatal(err)
	}
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

func TestInvalidInputNeverReachesUpstream(t *testing.T) {
	s, c := setup(t)
	for _, tc := range []struct{ id, name string }{
		{"11010519491231002x", "张三"}, {"110105194912310021", "张三"}, {"", "张三"},
		{"11010519491231002X", ""}, {"11010519491231002X", "张\n三"},
	} {
		if _, err := Identity(context.Background(), c, tc.id, tc.name); !licensehub.IsCode(err, licensehub.EINVALID) {
			t.Errorf("Identity(%q, %q) = %v", tc.id, tc.name, err)
		}
	}
	if _, err := Household(context.Background(), c, "123"); !licensehub.IsCode(err, licensehub.EINVALID) {
		t.Errorf("Household(123) = %v", err)
	}
	if n := s.Stats().Total; n != 0 {
		t.Errorf("%d upstream requests for invalid input", n)
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
	got, err := Household(context.Background(), c, id)
	if got != nil || !licensehub.IsCode(err, licensehub.ENOTFOUND) {
		t.Errorf("unknown person: %v, %v", got, err)
	}
}

func TestMalformedAnswer(t *testing.T) {
	s, c := setup(t)
	id := s.SamplePeople(1)[0]
	for _, kind := range []string{"partial", "truncated", "html"} {
		if err := s.SetKnobs(sim.Knobs{MalformedRate: 1, Malformed: kind}); err != nil {
			t.Fatal(err)
		}
		got, err := Identity(context.Background(), c, id, "张三")
		if got != nil || !licensehub.IsCode(err, licensehub.EUPSTREAMBAD) {
			t.Errorf("%s: %v, %v", kind, got, err)
		}
	}
}
