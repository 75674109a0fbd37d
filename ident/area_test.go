package ident

import "testing"

func TestAreaWithin(t *testing.T) {
	tests := []struct {
		area, sub string
		want      bool
	}{
		{"430100", "430100", true},
		{"430100", "430102", true},
		{"430100", "430200", false},
		{"430100", "430000", false}, // the province is not inside its city
		{"430000", "430000", true},
		{"430000", "431202", true},
		{"430000", "440100", false},
		{"430102", "430102", true},
		{"430102", "430103", false},
		{"441900", "441900", true}, // a city without counties
		{"", "650100", true},       // national
		{"430100", "4301", false},
		{"430100", "43010000", false},
	}
	for _, tt := range tests {
		if got := AreaWithin(tt.area, tt.sub); got != tt.want {
			t.Errorf("AreaWithin(%q, %q) = %v, want %v", tt.area, tt.sub, got, tt.want)
		}
	}
}

func TestIsAreaCode(t *testing.T) {
	for s, want := range map[string]bool{"430100": true, "110000": true, "000000": false, "001100": false,
		"43010": false, "4301000": false, "43O100": false, "４３０１００": false, "": false} {
		if got := IsAreaCode(s); got != want {
			t.Errorf("IsAreaCode(%q) = %v, want %v", s, got, want)
		}
	}
}
