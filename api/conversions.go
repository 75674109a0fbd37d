package api

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emmansun/gmsm/sm3"
	"github.com/gofiber/fiber/v2"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/audit"
	"github.com/licensehub/licensehub/auth"
	"github.com/licensehub/licensehub/convert"
	"github.com/licensehub/licensehub/convert/runner"
)

// Conversions serves stock-license conversion jobs (存量证照):
//
//	POST /v1/conversions?mapping=NAME[&format=csv|xlsx|jsonl]&sm3=HEX   body: the legacy file → 202 + job
//	GET  /v1/conversions/{id}                                          the job's state and counts
//	GET  /v1/conversions/{id}/rejects                                  the rejected rows, CSV
//
// Every call needs conversion.run on the mapping's license type and
// issuing authority, and is audited (operation conversion.run).
//
// The upload is streamed to the object store as it arrives: it is neither
// held in memory nor limited by server.body_limit, but by MaxUpload
// (conversion.max_upload). So that it can be authenticated before a byte
// is stored, its signature covers an empty body (client.SignRequest with
// a nil body) and the file's SM3 is the signed query parameter sm3 (64
// hex digits); a file whose SM3 differs is refused and nothing
// of it is kept.
type Conversions struct {
	Runner    *runner.Runner
	Mappings  map[string]*convert.Mapping // by Mapping.Name, as given to the runner
	MaxUpload int64                       // bytes; conversion.max_upload
}

// conversionsPath is the upload route, whose body is streamed.
const conversionsPath = "/v1/conversions"

// Formats of legacy files.
var conversionFormats = []string{"csv", "xlsx", "jsonl"}

func (s *Server) mountConversions() {
	s.app.Post(conversionsPath, s.createConversion)
	s.app.Get(conversionsPath+"/:id", s.conversionState)
	s.app.Get(conversionsPath+"/:id/rejects", s.conversionRejects)
}

// isUpload reports whether c is the conversion upload.
func (s *Server) isUpload(c *fiber.Ctx) bool {
	return s.conversions != nil && c.Method() == fiber.MethodPost && c.Path() == conversionsPath
}

const localUpload localsKey = iota + 200

// uploadBody is the upload's body as the handler reads it. It remembers
// the end of the stream: fasthttp's chunked reader, read again after its
// end, would wait for the next request's bytes.
type uploadBody struct {
	r   io.Reader
	eof bool
}

func (u *uploadBody) Read(p []byte) (int, error) {
	if u.eof {
		return 0, io.EOF
	}
	n, err := u.r.Read(p)
	if err == io.EOF {
		u.eof = true
	}
	return n, err
}

// passUpload replaces limitBody for the upload: the body stays a stream
// for the handler (see Conversions), and whatever the outcome (401, 403,
// 413, success) the connection is left clean: what was not read is
// drained, up to maxDrain, so that the client reads the answer (beyond
// that the connection is closed), and nothing later reads the body into
// memory.
func (s *Server) passUpload(c *fiber.Ctx) error {
	req := c.Request()
	var body *uploadBody
	if stream := req.BodyStream(); stream != nil {
		body = &uploadBody{r: stream}
	} else {
		body = &uploadBody{r: bytes.NewReader(req.Body())}
	}
	c.Locals(localUpload, body)
	err := c.Next()
	if _, derr := io.CopyN(io.Discard, body, maxDrain); derr != io.EOF {
		c.Response().SetConnectionClose()
	}
	req.SetBody(nil)
	return uploadAuthHint(err)
}

// signedBody is the body the request signature covers: an empty one for
// the upload (see Conversions), the whole body otherwise.
func (s *Server) signedBody(c *fiber.Ctx) []byte {
	if s.isUpload(c) {
		return nil
	}
	return c.Body()
}

// uploadAuthHint adds to a signature mismatch on the upload what differs
// from every other route.
func uploadAuthHint(err error) error {
	var e *licensehub.Error
	if !errors.As(err, &e) || e.Code != licensehub.EAUTHBADSIG || e.Details["reason"] != "mismatch" {
		return err
	}
	hinted := *e
	hinted.Details = maps.Clone(e.Details)
	hinted.Details["hint"] = "POST /v1/conversions is signed over an empty body; the file's SM3 is the sm3 query parameter"
	return &hinted
}

// createConversion: POST /v1/conversions — an issuing department uploads a
// legacy register; a runner on some hub instance converts it.
func (s *Server) createConversion(c *fiber.Ctx) error {
	job, err := s.upload(c)
	// The upload may have taken longer than the request context allows:
	// the audit record gets a deadline of its own.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.UserContext()), s.cfg.WriteTimeout.D())
	defer cancel()
	c.SetUserContext(ctx)
	if err := s.record(c, audit.Record{Operation: auth.OpConversionRun}, "", err); err != nil {
		return err
	}
	c.Location(conversionsPath + "/" + job.ID)
	return c.Status(fiber.StatusAccepted).JSON(job)
}

func (s *Server) upload(c *fiber.Ctx) (*runner.Job, error) {
	name := c.Query("mapping")
	if name == "" {
		return nil, licensehub.FieldError(licensehub.EINVALID, "mapping", "the mapping query parameter is required (one of %s)", s.mappingNames())
	}
	mapping, ok := s.conversions.Mappings[name]
	if !ok {
		return nil, licensehub.FieldError(licensehub.EINVALID, "mapping", "no mapping %q; configured: %s", name, s.mappingNames())
	}
	m, err := authorize(c, auth.OpConversionRun, auth.Resource{LicenseType: mapping.LicenseType, Authority: mapping.Authority.Code})
	if err != nil {
		return nil, err
	}
	format := c.Query("format", mapping.Format)
	switch {
	case format == "":
		return nil, licensehub.FieldError(licensehub.EINVALID, "format", "mapping %s does not say the file's format: give format=csv, xlsx or jsonl", name)
	case !slices.Contains(conversionFormats, format):
		return nil, licensehub.FieldError(licensehub.EINVALID, "format", "format must be csv, xlsx or jsonl, got %q", format)
	}
	want, err := hex.DecodeString(c.Query("sm3"))
	if err != nil || len(want) != sm3.Size {
		return nil, licensehub.FieldError(licensehub.EINVALID, "sm3",
			"the sm3 query parameter must be the file's SM3 in 64 hex digits (openssl dgst -sm3 FILE): the signature covers the file through it")
	}
	size := int64(c.Request().Header.ContentLength())
	switch {
	case size > s.conversions.MaxUpload:
		return nil, s.uploadTooLarge()
	case size == 0 || size < -1: // -2: no body at all
		return nil, licensehub.FieldError(licensehub.EINVALID, "body", "the request body (the legacy file) is empty")
	}
	body, _ := c.Locals(localUpload).(*uploadBody)
	if body == nil {
		return nil, licensehub.Errorf(licensehub.EINTERNAL, "the upload body was not passed through")
	}

	// The upload has no overall deadline (its size is up to MaxUpload),
	// but must keep moving: if no byte goes from the client to the object
	// store for server.read_timeout, it is abandoned.
	idle := s.cfg.ReadTimeout.D()
	ctx, cancel := context.WithCancel(context.WithoutCancel(c.UserContext()))
	defer cancel()
	stalled := time.AfterFunc(idle, cancel)
	defer stalled.Stop()
	in := &checkedUpload{r: body, size: size, max: s.conversions.MaxUpload, want: want, h: sm3.New(),
		progress: func() {
			stalled.Reset(idle)
			if conn := c.Context().Conn(); conn != nil {
				_ = conn.SetReadDeadline(time.Now().Add(idle))
			}
		},
		// Once the whole file is read the runner finishes the job's
		// objects within server.write_timeout.
		done:     func() { stalled.Reset(s.cfg.WriteTimeout.D()) },
		tooLarge: s.uploadTooLarge}
	in.progress()
	job, err := s.conversions.Runner.Create(ctx, name, format, in, size, m.AppID())
	if ierr := in.failure(); ierr != nil {
		return nil, ierr // the body's own fault, whatever the runner made of it
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, licensehub.Wrap(err, licensehub.ETIMEOUT,
				"the upload made no progress for %s (server.read_timeout) or took longer than server.write_timeout to finish; nothing was kept",
				licensehub.HumanDuration(idle))
		}
		return nil, err
	}
	if !in.complete() {
		// The runner stored the job without reading the whole body: a bug
		// to hear about, but the job is there.
		s.log.ErrorContext(ctx, "conversion upload: the runner did not read the whole body", "job", job.ID)
	}
	return job, nil
}

func (s *Server) uploadTooLarge() error {
	return &licensehub.Error{Code: licensehub.EBODYTOOLARGE, Field: "body", Details: map[string]any{"limit_bytes": s.conversions.MaxUpload},
		Message: "the file is larger than the configured limit (conversion.max_upload)"}
}

func (s *Server) mappingNames() string {
	names := slices.Sorted(maps.Keys(s.conversions.Mappings))
	if len(names) == 0 {
		return "(none: conversion.mappings_dir has no mapping)"
	}
	return strings.Join(names, ", ")
}

// checkedUpload reads the upload for the runner: at most max bytes, and
// only up to the end if the bytes have the SM3 the signed query stated.
// The Read that would complete a body that is too large or not the
// signed one returns an error instead of its bytes, so the runner never
// sees a complete wrong file.
type checkedUpload struct {
	r        io.Reader
	size     int64 // Content-Length, -1 when chunked
	max      int64
	want     []byte
	h        hash.Hash
	progress func() // bytes arrived
	done     func() // the whole body arrived and is the signed one
	tooLarge func() error

	mu       sync.Mutex
	n        int64
	err      error // the first failure, sticky
	verified bool
}

func (u *checkedUpload) Read(p []byte) (int, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.err != nil {
		return 0, u.err
	}
	if u.verified {
		return 0, io.EOF
	}
	n, err := u.r.Read(p)
	if n > 0 {
		u.progress()
		u.n += int64(n)
		u.h.Write(p[:n])
	}
	switch {
	case u.n > u.max:
		u.err = u.tooLarge()
	case err == io.EOF && u.size >= 0 && u.n != u.size:
		u.err = licensehub.FieldError(licensehub.EMALFORMED, "body", "the body ended after %d of its %d bytes", u.n, u.size)
	case err == io.EOF || u.size >= 0 && u.n == u.size:
		if got := u.h.Sum(nil); !bytes.Equal(got, u.want) {
			u.err = &licensehub.Error{Code: licensehub.EINVALID, Field: "sm3", Details: map[string]any{"body_sm3": hex.EncodeToString(got)},
				Message: "the file's SM3 differs from the signed sm3 parameter: it was changed or cut on the way; nothing was kept"}
		} else {
			u.verified = true
			u.done()
		}
	case err != nil:
		u.err = licensehub.Wrap(err, licensehub.EMALFORMED, "reading the upload failed after %d bytes", u.n)
	}
	if u.err != nil {
		return 0, u.err
	}
	if u.verified {
		return n, io.EOF
	}
	return n, nil
}

// complete reports whether the whole body was read and verified.
func (u *checkedUpload) complete() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.verified
}

// failure is the body's own error, if reading it failed.
func (u *checkedUpload) failure() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.err
}

// conversionJob reads the job named in the path and checks that the
// caller may run conversions with its mapping.
func (s *Server) conversionJob(c *fiber.Ctx) (*runner.State, error) {
	// Whoever may not run any conversion learns nothing about jobs.
	m, err := authorize(c, auth.OpConversionRun, auth.Resource{})
	if err != nil {
		return nil, err
	}
	id := c.Params("id")
	if !runner.ValidID(id) {
		return nil, licensehub.FieldError(licensehub.EINVALID, "id", "a conversion job ID is 32 lower-case hex digits")
	}
	st, err := s.conversions.Runner.State(c.UserContext(), id)
	if err != nil {
		if licensehub.IsCode(err, licensehub.ENOTFOUND) {
			return nil, licensehub.FieldError(licensehub.ENOTFOUND, "id", "no conversion job %s", id)
		}
		return nil, err
	}
	mapping, ok := s.conversions.Mappings[st.Job.Mapping]
	if !ok {
		// The mapping is no longer configured: nothing says whose licenses
		// the job made, so only administrators see it.
		if !m.HasRole(auth.RoleAdministrator) {
			return nil, licensehub.Errorf(licensehub.EFORBIDDENTYPE,
				"job %s used mapping %s, which is no longer configured; only administrators may see it", id, st.Job.Mapping)
		}
		return st, nil
	}
	if _, err := authorize(c, auth.OpConversionRun, auth.Resource{LicenseType: mapping.LicenseType, Authority: mapping.Authority.Code}); err != nil {
		return nil, err
	}
	return st, nil
}

// conversionState: GET /v1/conversions/{id}.
func (s *Server) conversionState(c *fiber.Ctx) error {
	st, err := s.conversionJob(c)
	if err := s.record(c, audit.Record{Operation: auth.OpConversionRun}, "", err); err != nil {
		return err
	}
	return c.JSON(st)
}

// conversionRejects: GET /v1/conversions/{id}/rejects — the rejected rows
// (line,field,code,message,number), streamed as they are read from the
// object store. A failure after the first bytes cuts the chunked answer
// short, so the client sees an error rather than a complete-looking file.
func (s *Server) conversionRejects(c *fiber.Ctx) error {
	st, err := s.conversionJob(c)
	var first []byte
	var rest *io.PipeReader
	if err == nil {
		first, rest, err = s.startRejects(c, st.Job.ID)
	}
	if err := s.record(c, audit.Record{Operation: auth.OpConversionRun}, "", err); err != nil {
		if rest != nil {
			rest.Close()
		}
		return err
	}
	c.Set(fiber.HeaderContentType, "text/csv; charset=utf-8")
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="`+st.Job.ID+`-rejects.csv"`)
	c.Context().SetBodyStream(&rejectsBody{Reader: io.MultiReader(bytes.NewReader(first), rest), pipe: rest}, -1)
	return nil
}

// startRejects runs the runner's Rejects into a pipe and waits for its
// first bytes, so that a job whose rejects cannot be read at all gets a
// proper error. The writer ends when it is done, fails, times out
// (server.write_timeout) or the response is closed.
func (s *Server) startRejects(c *fiber.Ctx, id string) ([]byte, *io.PipeReader, error) {
	pr, pw := io.Pipe()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.UserContext()), s.cfg.WriteTimeout.D())
	go func() {
		defer cancel()
		pw.CloseWithError(s.conversions.Runner.Rejects(ctx, id, pw))
	}()
	buf := make([]byte, 32<<10)
	n, err := pr.Read(buf)
	if err != nil && err != io.EOF {
		pr.CloseWithError(err)
		return nil, nil, err
	}
	return buf[:n], pr, nil
}

// rejectsBody is the streamed answer; fasthttp closes it when the
// response is done or abandoned, which stops the writer.
type rejectsBody struct {
	io.Reader
	pipe *io.PipeReader
}

func (r *rejectsBody) Close() error { return r.pipe.Close() }
