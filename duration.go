package licensehub

import (
	"strconv"
	"time"
)

// HumanDuration writes d in words for messages that clients and operators
// read ("366 days", "90 minutes", "1.5 seconds"), never in Go's notation
// ("8784h0m0s"): the largest unit d is a whole number of, else seconds
// (or, below one, milliseconds) with a fraction.
func HumanDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "minus " + HumanDuration(-d)
	case d == 0:
		return "0 seconds"
	}
	for _, u := range []struct {
		size time.Duration
		name string
	}{{24 * time.Hour, "day"}, {time.Hour, "hour"}, {time.Minute, "minute"}, {time.Second, "second"}} {
		if d%u.size == 0 {
			return count(strconv.FormatInt(int64(d/u.size), 10), u.name)
		}
	}
	if d >= time.Second {
		return count(strconv.FormatFloat(d.Seconds(), 'f', -1, 64), "second")
	}
	return count(strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', -1, 64), "millisecond")
}

func count(n, unit string) string {
	if n == "1" {
		return n + " " + unit
	}
	return n + " " + unit + "s"
}
