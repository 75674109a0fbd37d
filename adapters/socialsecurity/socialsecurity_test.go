package socialsecurity

import (
	"context"
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
	return simtest.Start(t, sim.Config{Seed: 78, Algorithm: "sha256"}, Upstream, nil)
}

// fetch checks params, asks the upstream for kind and maps its answer.
func fetch(t *testing.T, c *upstream.Client, kind string, params map[string]string) (map[string]any, error) {
	t.Helper()
	k, ok := adapters.FindKind(Kinds(), kind)
	if !ok {
		t.Fatalf("no kind %s", kind)
	}
	a, err := adapters.Fetch(context.Background(), c, k, params, time.Now())
	if err != nil {
		return nil, err
	}
	return a.Data, nil
}

func TestKindsValidate(t *testing.T) {
	for _, k := range Kinds() {
		if err := k.Validate(); err != nil {
			t.Errorf("%s: %v", k.Name, err)
		}
	}
}

func TestPersonInsurance(t *testing.T) {
	s, c := setup(t)
	id := s.SamplePeople(1)[0]
	got, err := fetch(t, c, KindPersonInsurance, map[string]string{"id_number": id})
	if err != nil {
		t.Fatal(err)
	}
	if got["id_number"] != id || got["name"] == "" || got["state"] == "" {
		t.Errorf("person %v", got)
	}
	if code, _ := got["employer_credit_code"].(string); ident.ValidateCreditCode(code) != nil {
		t.Errorf("employer_credit_code %v", got["employer_credit_code"])
	}
	ins, ok := got["insurances"].([]any)
	if !ok || len(ins) != 5 {
		t.Fatalf("insurances %v", got["insurances"])
	}
	kinds := map[string]bool{}
	for _, x := range ins {
		m := x.(map[string]any)
		kinds[m["kind"].(string)] = true
		if n, ok := m["months_paid"].(int64); !ok || n < 1 {
			t.Errorf("months_paid %#v", m["months_paid"])
		}
		// The upstream's rate is a float: the mapping makes it a string
		// (0 stays an integer).
		switch r := m["personal_rate"]; m["kind"] {
		case "养老":
			if r != "0.08" {
				t.Errorf("养老 personal_rate %#v, want \"0.08\"", r)
			}
		case "工伤":
			if r != int64(0) {
				t.Errorf("工伤 personal_rate %#v, want 0", r)
			}
		}
	}
	for _, k := range []string{"养老", "医疗", "失业", "工伤", "生育"} {
		if !kinds[k] {
			t.Errorf("no %s", k)
		}
	}
}

func TestEmployerInsurance(t *testing.T) {
	s, c := setup(t)
	code := s.SampleCompanies(1)[0]
	got, err := fetch(t, c, KindEmployerInsurance, map[string]string{"credit_code": code})
	if err != nil {
		t.Fatal(err)
	}
	if got["credit_code"] != code || got["state"] != "正常" {
		t.Errorf("employer %v", got)
	}
	if n, ok := got["insured_employees"].(int64); !ok || n < 1 {
		t.Errorf("insured_employees %#v", got["insured_employees"])
	}
	if _, ok := got["in_arrears"].(bool); !ok {
		t.Errorf("in_arrears %#v", got["in_arrears"])
	}
	if _, ok := got["contribution_months"].(int64); !ok {
		t.Errorf("contribution_months %#v", got["contribution_months"])
	}
	if k, ok := got["insurance_kinds"].([]any); !ok || len(k) != 5 {
		t.Errorf("insurance_kinds %#v", got["insurance_kinds"])
	}
}

func TestErrors(t *testing.T) {
	s, c := setup(t)
	if _, err := fetch(t, c, KindEmployerInsurance, map[string]string{"credit_code": "91350100M000100Y44"}); !licensehub.IsCode(err, licensehub.EINVALID) {
		t.Errorf("bad code: %v", err)
	}
	if s.Stats().Total != 0 {
		t.Error("an invalid code reached the upstream")
	}
	_ = s.SetKnobs(sim.Knobs{MalformedRate: 1, Malformed: "partial"})
	got, err := fetch(t, c, KindPersonInsurance, map[string]string{"id_number": s.SamplePeople(1)[0]})
	if got != nil || !licensehub.IsCode(err, licensehub.EUPSTREAMBAD) {
		t.Errorf("partial answer: %v, %v", got, err)
	}
}
