package tax

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/adapters"
	"github.com/licensehub/licensehub/adapters/sim"
	"github.com/licensehub/licensehub/adapters/sim/simtest"
	"github.com/licensehub/licensehub/adapters/upstream"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func setup(t *testing.T) (*sim.Server, *upstream.Client) {
	t.Helper()
	return simtest.Start(t, sim.Config{Seed: 79}, Upstream, nil)
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

func fen(t *testing.T, s string) int64 {
	t.Helper()
	y, f, ok := strings.Cut(s, ".")
	yi, err1 := strconv.ParseInt(y, 10, 64)
	fi, err2 := strconv.ParseInt(f, 10, 64)
	if !ok || len(f) != 2 || err1 != nil || err2 != nil {
		t.Fatalf("amount %q is not yuan with 2 decimals", s)
	}
	return yi*100 + fi
}

func TestRegistration(t *testing.T) {
	s, c := setup(t)
	code := s.SampleCompanies(1)[0]
	got, err := fetch(t, c, KindRegistration, map[string]string{"credit_code": code})
	if err != nil {
		t.Fatal(err)
	}
	if got["credit_code"] != code || got["state"] != "正常" || !strings.HasPrefix(got["tax_authority"].(string), "国家税务总局") {
		t.Errorf("registration %v", got)
	}
	if _, err := time.Parse(time.DateOnly, got["registered_on"].(string)); err != nil {
		t.Errorf("registered_on %v", got["registered_on"])
	}
}

func TestPayments(t *testing.T) {
	s, c := setup(t)
	code := s.SampleCompanies(1)[0]
	year := time.Now().Year() - 1
	got, err := fetch(t, c, KindPayments, map[string]string{"credit_code": code, "from": strconv.Itoa(year) + "-01", "to": strconv.Itoa(year) + "-12"})
	if err != nil {
		t.Fatal(err)
	}
	pays, ok := got["payments"].([]any)
	if !ok || got["payment_count"] != int64(len(pays)) {
		t.Fatalf("payments %v", got)
	}
	var sum int64
	for _, p := range pays {
		m := p.(map[string]any)
		sum += fen(t, m["amount"].(string))
		if m["item"] == "" || m["period"] == "" {
			t.Errorf("payment %v", m)
		}
	}
	if total := fen(t, got["total_amount"].(string)); total != sum {
		t.Errorf("total %d fen, items sum to %d", total, sum)
	}
	for _, bad := range [][2]string{{"2025-13", "2025-12"}, {"2025-06", "2025-01"}, {"2020-01", "2025-01"}, {"2025/01", "2025-02"}} {
		if _, err := fetch(t, c, KindPayments, map[string]string{"credit_code": code, "from": bad[0], "to": bad[1]}); !licensehub.IsCode(err, licensehub.EINVALID) {
			t.Errorf("period %v: %v", bad, err)
		}
	}
}

func TestCredit(t *testing.T) {
	s, c := setup(t)
	code := s.SampleCompanies(1)[0]
	year := time.Now().Year() - 2
	got, err := fetch(t, c, KindCredit, map[string]string{"credit_code": code, "year": strconv.Itoa(year)})
	if err != nil {
		t.Fatal(err)
	}
	if g, _ := got["grade"].(string); len(g) != 1 || !strings.Contains("ABMCD", g) || got["year"] != int64(year) {
		t.Errorf("credit %v", got)
	}
	// This year is not rated yet.
	if got, err := fetch(t, c, KindCredit, map[string]string{"credit_code": code, "year": strconv.Itoa(time.Now().Year())}); got != nil || !licensehub.IsCode(err, licensehub.ENOTFOUND) {
		t.Errorf("this year: %v, %v", got, err)
	}
}

func TestMalformed(t *testing.T) {
	s, c := setup(t)
	code := s.SampleCompanies(1)[0]
	_ = s.SetKnobs(sim.Knobs{MalformedRate: 1, Malformed: "partial"})
	if got, err := fetch(t, c, KindRegistration, map[string]string{"credit_code": code}); got != nil || !licensehub.IsCode(err, licensehub.EUPSTREAMBAD) {
		t.Errorf("partial: %v, %v", got, err)
	}
	_ = s.SetKnobs(sim.Knobs{MalformedRate: 1, Malformed: "truncated"})
	if got, err := fetch(t, c, KindCredit, map[string]string{"credit_code": code, "year": strconv.Itoa(time.Now().Year() - 2)}); got != nil || !licensehub.IsCode(err, licensehub.EUPSTREAMBAD) {
		t.Errorf("truncated: %v, %v", got, err)
	}
}
