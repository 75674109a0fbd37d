package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
)

func TestRequestIDInEveryRecord(t *testing.T) {
	var buf bytes.Buffer
	log := New(&buf, "info", "json").With("component", "test")
	ctx := WithRequestID(context.Background(), "req-1")
	log.InfoContext(ctx, "hello")
	log.DebugContext(ctx, "dropped")
	log.Info("no context")

	lines := bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n"))
	if len(lines) != 2 {
		t.Fatalf("want 2 records, got %d: %s", len(lines), buf.String())
	}
	var first, second map[string]any
	if err := json.Unmarshal(lines[0], &first); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(lines[1], &second); err != nil {
		t.Fatal(err)
	}
	if first["request_id"] != "req-1" || first["component"] != "test" {
		t.Errorf("first record: %v", first)
	}
	if _, ok := second["request_id"]; ok {
		t.Errorf("record without context has a request_id: %v", second)
	}
}

func TestMaskID(t *testing.T) {
	tests := map[string]string{
		"11010519491231002X": "110*************2X",
		"91350100M000100Y43": "913*************43",
		"123456":             "******",
		"":                   "",
		"张三丰李四王五":            "张三丰**王五",
	}
	for in, want := range tests {
		if got := MaskID(in); got != want {
			t.Errorf("MaskID(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMaskPath(t *testing.T) {
	tests := map[string]string{
		"/v1/holders/11010519491231002X/usage":                                                   "/v1/holders/110*************2X/usage",
		"/v1/holders/91350100M000100Y43/licenses":                                                "/v1/holders/913*************43/licenses",
		"/v1/keys/0123456789abcdef0123456789abcdef":                                              "/v1/keys/0123456789abcdef0123456789abcdef",
		"/v1/licenses/1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.001.U": "/v1/licenses/1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.001.U",
		"/healthz": "/healthz",
	}
	for in, want := range tests {
		if got := MaskPath(in); got != want {
			t.Errorf("MaskPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMaskText(t *testing.T) {
	tests := []struct {
		in   string
		max  int
		want string
	}{
		{"person 11010519491231002X not found", 200, "person 110*************2X not found"},
		{"invalid parameter credit_code: 91350100M000100Y43 (check_character)", 200, "invalid parameter credit_code: 913*************43 (check_character)"},
		{"phone 13800000000, year 2024, code 4004", 200, "phone 138******00, year 2024, code 4004"},
		{"张三的身份证号110105194912310021有误", 200, "张三的身份证号110*************21有误"},
		{"身份号码不一致", 3, "身份号…"},
		{"", 10, ""},
	}
	for _, tt := range tests {
		if got := MaskText(tt.in, tt.max); got != tt.want {
			t.Errorf("MaskText(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
		}
	}
}
