// Package logging builds the hub's slog logger. Every record logged with a
// context that carries a request ID gets a request_id attribute, so one
// request can be followed across the HTTP layer, the domain and the stores.
package logging

import (
	"context"
	"io"
	"log/slog"
	"strings"
)

type ctxKey struct{}

// WithRequestID returns ctx carrying the request ID.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// RequestID returns the request ID carried by ctx, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(ctxKey{}).(string)
	return id
}

// New returns a logger writing format ("json" or "text") at level.
func New(w io.Writer, level, format string) *slog.Logger {
	opts := &slog.HandlerOptions{Level: ParseLevel(level)}
	var h slog.Handler
	if format == "text" {
		h = slog.NewTextHandler(w, opts)
	} else {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(contextHandler{h})
}

// ParseLevel maps debug|info|warn|error to a slog level (info otherwise).
func ParseLevel(s string) slog.Level {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// contextHandler adds request_id from the record's context.
type contextHandler struct{ slog.Handler }

func (h contextHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := RequestID(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h contextHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return contextHandler{h.Handler.WithAttrs(as)}
}

func (h contextHandler) WithGroup(name string) slog.Handler {
	return contextHandler{h.Handler.WithGroup(name)}
}

// MaskID masks a personal identifier (resident ID number, credit code,
// phone number) for logs: the first 3 and last 2 characters stay, the rest
// becomes '*'. Short values are masked entirely.
func MaskID(s string) string {
	r := []rune(s)
	if len(r) <= 6 {
		return strings.Repeat("*", len(r))
	}
	for i := 3; i < len(r)-2; i++ {
		r[i] = '*'
	}
	return string(r)
}

// MaskPath masks every path segment that looks like a holder code (15 to
// 18 characters of digits and upper-case letters, mostly digits: resident
// ID numbers and unified social credit codes), so request logs carry no
// personal identifiers: /v1/holders/11010519491231002X/usage becomes
// /v1/holders/110*************2X/usage.
func MaskPath(p string) string {
	segs := strings.Split(p, "/")
	changed := false
	for i, s := range segs {
		if looksLikeHolderCode(s) {
			segs[i], changed = MaskID(s), true
		}
	}
	if !changed {
		return p
	}
	return strings.Join(segs, "/")
}

func looksLikeHolderCode(s string) bool {
	if len(s) < 15 || len(s) > 18 {
		return false
	}
	digits := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c >= 'A' && c <= 'Z', c == 'x':
		default:
			return false
		}
	}
	return digits >= 10
}

// MaskText masks, in free text such as another system's error message,
// every run of ASCII letters and digits that looks like a personal
// identifier (at least 11 characters, at least 10 of them digits: resident
// ID numbers, credit codes, phone numbers), and cuts the text to max
// characters.
func MaskText(s string, max int) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && isAlnum(s[j]) {
			j++
		}
		if j == i {
			b.WriteByte(s[i])
			i++
			continue
		}
		tok, digits := s[i:j], 0
		for k := 0; k < len(tok); k++ {
			if tok[k] >= '0' && tok[k] <= '9' {
				digits++
			}
		}
		if len(tok) >= 11 && digits >= 10 {
			tok = MaskID(tok)
		}
		b.WriteString(tok)
		i = j
	}
	if r := []rune(b.String()); len(r) > max {
		return string(r[:max]) + "…"
	}
	return b.String()
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}
