package api

import (
	"errors"
	"net/http"

	"github.com/gofiber/fiber/v2"

	"github.com/licensehub/licensehub"
)

// statusOf maps every stable error code to its HTTP status. This is the
// only place where codes meet HTTP.
var statusOf = map[string]int{
	licensehub.EINVALID:            http.StatusBadRequest,
	licensehub.EMALFORMED:          http.StatusBadRequest,
	licensehub.ESIGINVALID:         http.StatusBadRequest,
	licensehub.ENOTFOUND:           http.StatusNotFound,
	licensehub.ELICNOTFOUND:        http.StatusNotFound,
	licensehub.EKEYNOTFOUND:        http.StatusNotFound,
	licensehub.EMETHOD:             http.StatusMethodNotAllowed,
	licensehub.ECONFLICT:           http.StatusConflict,
	licensehub.EILLEGALTRANSITION:  http.StatusConflict,
	licensehub.EBODYTOOLARGE:       http.StatusRequestEntityTooLarge,
	licensehub.EMEDIATYPE:          http.StatusUnsupportedMediaType,
	licensehub.EREQUESTTIMEOUT:     http.StatusRequestTimeout,
	licensehub.EURITOOLONG:         http.StatusRequestURITooLong,
	licensehub.EHEADERSTOOLARGE:    http.StatusRequestHeaderFieldsTooLarge,
	licensehub.EUNAUTHENTICATED:    http.StatusUnauthorized,
	licensehub.EFORBIDDEN:          http.StatusForbidden,
	licensehub.EAUTHMISSING:        http.StatusUnauthorized,
	licensehub.EAUTHUNKNOWNAPP:     http.StatusUnauthorized,
	licensehub.EAUTHBADSIG:         http.StatusUnauthorized,
	licensehub.EAUTHSTALE:          http.StatusUnauthorized,
	licensehub.EAUTHREPLAY:         http.StatusUnauthorized,
	licensehub.EFORBIDDENROLE:      http.StatusForbidden,
	licensehub.EFORBIDDENOPERATION: http.StatusForbidden,
	licensehub.EFORBIDDENTYPE:      http.StatusForbidden,
	licensehub.EFORBIDDENAUTHORITY: http.StatusForbidden,
	licensehub.EFORBIDDENMATTER:    http.StatusForbidden,
	licensehub.ERATELIMITED:        http.StatusTooManyRequests,
	licensehub.EINTERNAL:           http.StatusInternalServerError,
	licensehub.EUNAVAILABLE:        http.StatusServiceUnavailable,
	licensehub.EOBJECTSTORE:        http.StatusServiceUnavailable,
	licensehub.EOUTCOMEUNKNOWN:     http.StatusServiceUnavailable,
	licensehub.EUPSTREAM:           http.StatusServiceUnavailable,
	licensehub.EUPSTREAMBAD:        http.StatusBadGateway,
	licensehub.ETIMEOUT:            http.StatusGatewayTimeout,
}

// StatusOf returns the HTTP status for an error code (500 for unknown codes).
func StatusOf(code string) int {
	if s, ok := statusOf[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// ErrorBody is the one JSON shape of every error the hub answers.
type ErrorBody struct {
	Code      string         `json:"code"`
	Message   string         `json:"message"`
	RequestID string         `json:"request_id"`
	Details   map[string]any `json:"details,omitempty"`
}

// fiberCodes translates the errors Fiber itself raises (routing, body
// limit, malformed requests) into the hub's codes.
var fiberCodes = map[int]string{
	fiber.StatusNotFound:                    licensehub.ENOTFOUND,
	fiber.StatusMethodNotAllowed:            licensehub.EMETHOD,
	fiber.StatusRequestEntityTooLarge:       licensehub.EBODYTOOLARGE,
	fiber.StatusRequestTimeout:              licensehub.EREQUESTTIMEOUT,
	fiber.StatusUnsupportedMediaType:        licensehub.EMEDIATYPE,
	fiber.StatusRequestURITooLong:           licensehub.EURITOOLONG,
	fiber.StatusRequestHeaderFieldsTooLarge: licensehub.EHEADERSTOOLARGE,
	fiber.StatusBadRequest:                  licensehub.EMALFORMED,
}

// toError turns any error a handler returns into a *licensehub.Error.
func toError(c *fiber.Ctx, err error) *licensehub.Error {
	var le *licensehub.Error
	if errors.As(err, &le) {
		return le
	}
	var fe *fiber.Error
	if errors.As(err, &fe) {
		code, ok := fiberCodes[fe.Code]
		if !ok {
			code = licensehub.EMALFORMED
			if fe.Code >= 500 {
				code = licensehub.EINTERNAL
			}
		}
		msg := fe.Message
		switch code {
		case licensehub.ENOTFOUND:
			msg = "no route " + c.Method() + " " + c.Path()
		case licensehub.EBODYTOOLARGE:
			msg = "request body is larger than the configured limit (server.body_limit)"
		}
		return &licensehub.Error{Code: code, Message: msg, Err: err}
	}
	return &licensehub.Error{Code: licensehub.EINTERNAL, Message: "internal error", Err: err}
}

// body renders e for a client. Internal errors never leak their cause.
func body(e *licensehub.Error, requestID string) ErrorBody {
	b := ErrorBody{Code: e.Code, Message: e.Message, RequestID: requestID, Details: e.Details}
	if e.Field != "" {
		if b.Details == nil {
			b.Details = map[string]any{}
		} else {
			copied := make(map[string]any, len(b.Details)+1)
			for k, v := range b.Details {
				copied[k] = v
			}
			b.Details = copied
		}
		b.Details["field"] = e.Field
	}
	if StatusOf(e.Code) >= 500 && e.Code == licensehub.EINTERNAL {
		b.Message = "internal error; quote the request_id to the operators"
	}
	if b.Message == "" {
		b.Message = http.StatusText(StatusOf(e.Code))
	}
	return b
}
