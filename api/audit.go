package api

import (
	"context"
	"net/url"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/audit"
	"github.com/licensehub/licensehub/auth"
	"github.com/licensehub/licensehub/ident"
)

// AuditTrail is what the API needs of the audit trail (audit.Trail).
type AuditTrail interface {
	Append(ctx context.Context, r audit.Record) error
	SetHolder(r *audit.Record, code string)
	Query(ctx context.Context, f audit.Filter) (audit.Page, error)
	HolderUsage(ctx context.Context, holderCode, cursor string, limit int) (audit.Page, error)
}

// Headers with which a caller states who acts and why. Values that are not
// ASCII (names, reasons in Chinese) are percent-encoded UTF-8.
const (
	HeaderOperatorAccount    = "X-Hub-Operator-Account"
	HeaderOperatorName       = "X-Hub-Operator-Name"
	HeaderOperatorDepartment = "X-Hub-Operator-Department"
	HeaderOperatorRole       = "X-Hub-Operator-Role"
	HeaderReason             = "X-Hub-Reason"
	HeaderMatter             = "X-Hub-Matter"
)

// publicApp is the app ID audited for calls to public routes.
const publicApp = "public"

// record writes the audit record of this request: who (app, operator),
// what (rec.Operation, licenses, holder), why (matter, reason) and the
// outcome (cause's code, or OK). It must return before the response that
// carries or changes license data is sent; if the trail cannot take the
// record, that response is not sent: the caller gets the trail's error.
func (s *Server) record(c *fiber.Ctx, rec audit.Record, holder string, cause error) error {
	if s.audit == nil {
		return cause
	}
	rec.AppID = publicApp
	if m := member(c); m != nil {
		rec.AppID = m.AppID()
	}
	rec.RequestID, _ = c.Locals(localRequestID).(string)
	rec.Result = audit.ResultOK
	if cause != nil {
		rec.Result = licensehub.ErrorCode(cause)
	}
	if rec.Matter == "" {
		rec.Matter = headerText(c, HeaderMatter)
	}
	rec.Reason = headerText(c, HeaderReason)
	if acct := headerText(c, HeaderOperatorAccount); acct != "" {
		rec.Operator = &audit.Operator{Account: acct, Name: headerText(c, HeaderOperatorName),
			Department: headerText(c, HeaderOperatorDepartment), Role: headerText(c, HeaderOperatorRole)}
	}
	s.audit.SetHolder(&rec, holder)
	if err := s.audit.Append(c.UserContext(), rec); err != nil {
		return licensehub.Wrap(err, licensehub.EUNAVAILABLE, "the audit trail cannot record this use, so it is not served")
	}
	return cause
}

// headerText decodes a percent-encoded header value (raw if it does not
// decode).
func headerText(c *fiber.Ctx, name string) string {
	v := c.Get(name)
	if d, err := url.PathUnescape(v); err == nil {
		return d
	}
	return v
}

func (s *Server) mountAudit() {
	s.app.Get("/v1/audit", s.auditQuery)
	s.app.Get("/v1/holders/:code/usage", s.holderUsage)
}

// auditQuery serves supervisors: GET /v1/audit?app=&holder=&license=&matter=&from=&to=&cursor=&limit=
func (s *Server) auditQuery(c *fiber.Ctx) error {
	if _, err := authorize(c, auth.OpAuditRead, auth.Resource{}); err != nil {
		return err
	}
	f := audit.Filter{App: c.Query("app"), HolderCode: c.Query("holder"), License: c.Query("license"),
		Matter: c.Query("matter"), Cursor: c.Query("cursor")}
	var err error
	if f.From, err = queryTime(c, "from"); err != nil {
		return err
	}
	if f.To, err = queryTime(c, "to"); err != nil {
		return err
	}
	if f.Limit, err = queryLimit(c); err != nil {
		return err
	}
	page, err := s.audit.Query(c.UserContext(), f)
	var licenses []string
	if f.License != "" {
		licenses = []string{f.License}
	}
	if err := s.record(c, audit.Record{Operation: auth.OpAuditRead, Licenses: licenses}, f.HolderCode, err); err != nil {
		return err
	}
	return c.JSON(fiber.Map{"records": nonNil(page.Records), "next": page.Next})
}

// usageEntry is what a citizen sees of one use of their licenses.
type usageEntry struct {
	Time      string          `json:"time"`
	App       string          `json:"app_id"`
	Operator  *audit.Operator `json:"operator,omitempty"`
	Operation string          `json:"operation"`
	Matter    string          `json:"matter,omitempty"`
	Reason    string          `json:"reason,omitempty"`
	Licenses  []string        `json:"licenses,omitempty"`
	Result    string          `json:"result"`
}

// holderUsage serves citizen-facing apps: who used this holder's licenses,
// when, for which matter and why.
func (s *Server) holderUsage(c *fiber.Ctx) error {
	if _, err := authorize(c, auth.OpUsageRead, auth.Resource{}); err != nil {
		return err
	}
	code := c.Params("code")
	if ident.ValidateResidentID(code) != nil && ident.ValidateCreditCode(code) != nil {
		return licensehub.FieldError(licensehub.EINVALID, "code",
			"holder code must be a valid resident ID number or unified social credit code")
	}
	limit, err := queryLimit(c)
	if err != nil {
		return err
	}
	page, err := s.audit.HolderUsage(c.UserContext(), code, c.Query("cursor"), limit)
	if err := s.record(c, audit.Record{Operation: auth.OpUsageRead}, code, err); err != nil {
		return err
	}
	usage := make([]usageEntry, 0, len(page.Records))
	for _, r := range page.Records {
		usage = append(usage, usageEntry{Time: r.Time.UTC().Format(audit.TimeLayout), App: r.AppID, Operator: r.Operator,
			Operation: r.Operation, Matter: r.Matter, Reason: r.Reason, Licenses: r.Licenses, Result: r.Result})
	}
	return c.JSON(fiber.Map{"holder": audit.MaskHolder(code), "usage": usage, "next": page.Next})
}

func queryTime(c *fiber.Ctx, name string) (time.Time, error) {
	v := c.Query(name)
	if v == "" {
		return time.Time{}, nil
	}
	return parseDateTime(name, v)
}

func queryLimit(c *fiber.Ctx) (int, error) {
	v := c.Query("limit")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > audit.MaxQueryLimit {
		return 0, licensehub.FieldError(licensehub.EINVALID, "limit", "limit must be 1..%d", audit.MaxQueryLimit)
	}
	return n, nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
