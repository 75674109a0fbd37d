package audit

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/licensehub/licensehub"
)

func TestRecordJSON(t *testing.T) {
	at := time.Date(2026, 11, 26, 16, 0, 0, 123456789, time.FixedZone("CST", 8*3600))
	r := Record{
		Time: at, AppID: "app-1", Operator: &Operator{Account: "zhang3", Name: "张三", Department: "市场监管局", Role: "approver"},
		Operation: "license.read", Matter: "M-001", Reason: "开办企业", Licenses: []string{"L1", "L2"},
		Result: ResultOK, RequestID: "req-1", InstanceID: "hub-1",
	}
	SetHolderForTest(&r, "110105199001010027")
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"time": "2026-11-26T08:00:00.123Z", "app_id": "app-1", "operation": "license.read", "matter": "M-001",
		"reason": "开办企业", "result": "OK", "request_id": "req-1", "instance_id": "hub-1",
		"holder_masked": "110*************27",
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("JSON %s = %v, want %v (%s)", k, m[k], v, b)
		}
	}
	if op, _ := m["operator"].(map[string]any); op["account"] != "zhang3" || op["department"] != "市场监管局" {
		t.Errorf("JSON operator = %v", m["operator"])
	}
	if strings.Contains(string(b), "110105199001010027") {
		t.Fatalf("the plain holder code is in the record: %s", b)
	}
	var back Record
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !back.Time.Equal(at.Truncate(time.Millisecond)) || back.HolderHash != r.HolderHash || back.Operator.Name != "张三" || len(back.Licenses) != 2 {
		t.Fatalf("round trip: %+v, want %+v", back, r)
	}
}

// SetHolderForTest fills the holder fields as Trail.SetHolder does with
// the test holder key.
func SetHolderForTest(r *Record, code string) {
	r.HolderMasked, r.HolderHash = MaskHolder(code), HashHolder(testHolderKey, code)
}

func TestHolderHash(t *testing.T) {
	a := HashHolder(testHolderKey, "11010519900101002X")
	if !isHexHash(a) {
		t.Fatalf("HashHolder = %q, want 64 hex digits", a)
	}
	for _, same := range []string{"11010519900101002x", " 11010519900101002X\t"} {
		if got := HashHolder(testHolderKey, same); got != a {
			t.Errorf("HashHolder(%q) = %s, want %s (same holder)", same, got, a)
		}
	}
	if HashHolder([]byte("another-key-0123456789"), "11010519900101002X") == a {
		t.Error("the hash does not depend on the key")
	}
	if HashHolder(testHolderKey, "11010519900101003X") == a {
		t.Error("two holders hash alike")
	}
	if got := MaskHolder("11010519900101002x"); got != "110*************2X" {
		t.Errorf("MaskHolder = %q", got)
	}
}

func TestAppendValidation(t *testing.T) {
	h := newStreamHub(t, openFS(t))
	ok := func() Record { return record("app", "license.read") }
	now := time.Now()
	cases := []struct {
		name  string
		edit  func(r *Record)
		field string
	}{
		{"no operation", func(r *Record) { r.Operation = "" }, "operation"},
		{"no result", func(r *Record) { r.Result = "" }, "result"},
		{"operator without account", func(r *Record) { r.Operator = &Operator{Name: "x"} }, "operator.account"},
		{"plain holder code", func(r *Record) { r.HolderMasked, r.HolderHash = "110105199001010027", HashHolder(testHolderKey, "x") }, "holder_masked"},
		{"hash that is not a hash", func(r *Record) { r.HolderMasked, r.HolderHash = MaskHolder("110105199001010027"), "110105199001010027" }, "holder_hash"},
		{"masked without hash", func(r *Record) { r.HolderMasked = MaskHolder("110105199001010027") }, "holder_hash"},
		{"time far in the past", func(r *Record) { r.Time = now.Add(-time.Hour) }, "time"},
		{"time in the future", func(r *Record) { r.Time = now.Add(2 * time.Minute) }, "time"},
		{"too large", func(r *Record) { r.Reason = strings.Repeat("x", MaxRecordSize) }, "record"},
		{"invalid UTF-8", func(r *Record) { r.Reason = "\xff" }, "record"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := ok()
			tc.edit(&r)
			err := h.Append(t.Context(), r)
			var e *licensehub.Error
			if !licensehub.IsCode(err, licensehub.EINVALID) || !asError(err, &e) || e.Field != tc.field {
				t.Fatalf("Append = %v, want %s on field %s", err, licensehub.EINVALID, tc.field)
			}
		})
	}
	t.Run("valid", func(t *testing.T) {
		r := ok()
		h.SetHolder(&r, "110105199001010027")
		r.Time = now.Add(-30 * time.Second)
		if err := h.Append(t.Context(), r); err != nil {
			t.Fatalf("Append: %v", err)
		}
		es, err := h.journal.Read(t.Context(), "", 0)
		if err != nil || len(es) != 1 {
			t.Fatalf("journal holds %d entries, %v; want 1", len(es), err)
		}
		got, err := decodeRecord(es[0].Data)
		if err != nil {
			t.Fatal(err)
		}
		if got.InstanceID != "hub-test" || got.Time.Location() != time.UTC || got.Time.Nanosecond()%int(time.Millisecond) != 0 {
			t.Fatalf("journaled record %+v: want instance hub-test, UTC milliseconds", got)
		}
		if strings.Contains(string(es[0].Data), "110105199001010027") {
			t.Fatalf("the journal holds the plain holder code: %s", es[0].Data)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := contextWithCancel(t)
		cancel()
		if err := h.Append(ctx, ok()); !licensehub.IsCode(err, licensehub.ETIMEOUT) {
			t.Fatalf("Append with a cancelled context = %v, want %s", err, licensehub.ETIMEOUT)
		}
	})
}
