package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Client calls the hub as one member system, signing every call.
//
//	c := &client.Client{
//		BaseURL:     "https://hub.example.gov.cn",
//		Credentials: client.Credentials{AppID: "scjg-approval", Secret: secret},
//	}
//	resp, err := c.Do(ctx, http.MethodGet, "/v1/licenses/"+id, nil, nil, nil)
//	if err != nil { ... }
//	defer resp.Body.Close()
//	if err := client.ReadError(resp); err != nil { ... } // an *APIError
type Client struct {
	// BaseURL is the hub's URL, e.g. https://hub.example.gov.cn; it may
	// carry a path prefix (https://gw.example/licensehub).
	BaseURL     string
	Credentials Credentials
	// HTTP sends the requests; nil means http.DefaultClient.
	HTTP *http.Client
}

// Do signs and sends one request. path is the escaped path below BaseURL
// ("/v1/licenses/..."), without a query: query (nil for none) is encoded
// into it. body (nil for none) is sent as it is, with Content-Type
// application/json unless hdr sets another. hdr (nil for none) adds
// headers. The response is returned whatever its status; the caller closes
// its body and may pass a non-2xx response to ReadError.
func (c *Client) Do(ctx context.Context, method, path string, query url.Values, body []byte, hdr http.Header) (*http.Response, error) {
	u, err := c.url(path, query)
	if err != nil {
		return nil, err
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, fmt.Errorf("client: %s %s: %w", method, path, err)
	}
	for k, vs := range hdr {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if len(body) > 0 && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if err := SignRequest(req, body, c.Credentials, time.Now()); err != nil {
		return nil, err
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	return hc.Do(req)
}

// url joins BaseURL, path and query.
func (c *Client) url(path string, query url.Values) (string, error) {
	if c.BaseURL == "" {
		return "", errors.New("client: BaseURL is empty")
	}
	if strings.ContainsAny(path, "?#") {
		return "", fmt.Errorf("client: path %q has a query or fragment; pass the query as url.Values", path)
	}
	raw := strings.TrimRight(c.BaseURL, "/") + "/" + strings.TrimLeft(path, "/")
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("client: bad URL %q: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return "", fmt.Errorf("client: BaseURL %q is not an http(s)://host URL", c.BaseURL)
	}
	if len(query) > 0 {
		u.RawQuery = query.Encode()
	}
	return u.String(), nil
}

// NewTransport returns a RoundTripper that signs every request with c and
// passes it to next (http.DefaultTransport when nil). It reads the request
// body to sign it and sends a copy of the request carrying those bytes; the
// caller's request is not modified. Redirects followed by an http.Client
// are signed afresh.
func NewTransport(c Credentials, next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return &signingTransport{creds: c, next: next}
}

type signingTransport struct {
	creds Credentials
	next  http.RoundTripper
}

func (t *signingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		var err error
		body, err = io.ReadAll(req.Body)
		req.Body.Close() // a RoundTripper always closes the body
		if err != nil {
			return nil, fmt.Errorf("client: reading the body to sign it: %w", err)
		}
	} else if req.Body != nil {
		req.Body.Close()
	}
	out := req.Clone(req.Context())
	if body != nil {
		out.Body = io.NopCloser(bytes.NewReader(body))
		out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		out.ContentLength = int64(len(body))
	}
	if err := SignRequest(out, body, t.creds, time.Now()); err != nil {
		return nil, err
	}
	return t.next.RoundTrip(out)
}

// APIError is an error answered by the hub: the HTTP status and the JSON
// error body {"code","message","request_id","details"}.
type APIError struct {
	Status    int
	Code      string // stable, e.g. AUTH_BAD_SIGNATURE; "" when the body was not the hub's error JSON
	Message   string
	RequestID string
	Details   map[string]any
	// RetryAfter is the Retry-After header (429 and 503), 0 when absent.
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	s := "hub answered " + strconv.Itoa(e.Status)
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.RequestID != "" {
		s += " (request_id " + e.RequestID + ")"
	}
	return s
}

// maxErrorBody bounds how much of an error response ReadError reads.
const maxErrorBody = 64 << 10

// ReadError returns nil for a 2xx response, leaving its body alone.
// For any other status it reads (at most 64 KiB of) and closes the body and
// returns an *APIError: the hub's error JSON when the body is one,
// otherwise the status with the start of the body as Message. RequestID
// falls back to the X-Request-Id header.
func ReadError(resp *http.Response) error {
	if resp == nil {
		return errors.New("client: ReadError: nil response")
	}
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return nil
	}
	e := &APIError{Status: resp.StatusCode, RequestID: resp.Header.Get("X-Request-Id")}
	if s, err := strconv.Atoi(strings.TrimSpace(resp.Header.Get("Retry-After"))); err == nil && s > 0 {
		e.RetryAfter = time.Duration(s) * time.Second
	}
	var raw []byte
	if resp.Body != nil {
		raw, _ = io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		resp.Body.Close()
	}
	var body struct {
		Code      string         `json:"code"`
		Message   string         `json:"message"`
		RequestID string         `json:"request_id"`
		Details   map[string]any `json:"details"`
	}
	if json.Unmarshal(raw, &body) == nil && body.Code != "" {
		e.Code, e.Message, e.Details = body.Code, body.Message, body.Details
		if body.RequestID != "" {
			e.RequestID = body.RequestID
		}
		return e
	}
	if msg := strings.TrimSpace(string(raw)); msg != "" {
		e.Message = clip(msg, 512)
	} else {
		e.Message = http.StatusText(resp.StatusCode)
	}
	return e
}
