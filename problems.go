package licensehub

import (
	"errors"
	"fmt"
	"strings"
)

// Problem is one reason to refuse an input file (a catalog, the member
// registry, a keyring): the field it concerns and a complete message naming
// file, line, entry and field.
type Problem struct {
	Field string // e.g. members[1].grants[0].operations[2]; "" for the whole file
	Msg   string
}

// Problems collects every problem of an input, so an operator fixes them
// all in one pass.
type Problems []Problem

// Err turns the problems into one EINVALID *Error (nil when there are
// none): a single problem as it is, several as one message listing them
// all. what names the input, e.g. "catalog configs/catalog". Every message
// is also in Details["problems"].
func (ps Problems) Err(what string) error {
	if len(ps) == 0 {
		return nil
	}
	msgs := make([]string, len(ps))
	for i, p := range ps {
		msgs[i] = p.Msg
	}
	e := &Error{Code: EINVALID, Field: ps[0].Field, Message: ps[0].Msg, Details: map[string]any{"problems": msgs}}
	if len(ps) > 1 {
		e.Message = fmt.Sprintf("%s has %d problems:\n  %s", what, len(ps), strings.Join(msgs, "\n  "))
	}
	return e
}

// Message is the human part of err: the Message of an *Error (without the
// code prefix), else err.Error().
func Message(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Message != "" {
		return e.Message
	}
	return err.Error()
}
