package licensehub

import (
	"testing"
	"time"
)

func TestHumanDuration(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{8784 * time.Hour, "366 days"},
		{24 * time.Hour, "1 day"},
		{36 * time.Hour, "36 hours"},
		{5 * time.Minute, "5 minutes"},
		{90 * time.Minute, "90 minutes"},
		{30 * time.Second, "30 seconds"},
		{1500 * time.Millisecond, "1.5 seconds"},
		{250 * time.Millisecond, "250 milliseconds"},
		{0, "0 seconds"},
		{-time.Minute, "minus 1 minute"},
	} {
		if got := HumanDuration(tt.d); got != tt.want {
			t.Errorf("HumanDuration(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}
