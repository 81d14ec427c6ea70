// Package client is a typed client of faxbox's HTTP API (v1): submit a fax
// with its documents streamed from disk, read, list, cancel and retry jobs,
// read the box's status and follow its server-sent events. Every error the
// API answers comes back as an *APIError with the API's code and message.
package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// ErrNotSupported is returned (wrapped) when the box has no such endpoint:
// it answered 404 for a path that is a collection or stream, not an object.
var ErrNotSupported = errors.New("client: the box does not offer this endpoint")

// APIError is an error answer of the API:
// {"error": {"code": "invalid_number", "message": "…", "field": "to"}}.
type APIError struct {
	HTTPStatus int    `json:"-"`
	Code       string `json:"code"`
	Message    string `json:"message"`
	Field      string `json:"field,omitempty"`
}

// Error returns "code: message (field F, HTTP n)".
func (e *APIError) Error() string {
	s := e.Code + ": " + e.Message
	if e.Field != "" {
		return fmt.Sprintf("%s (field %s, HTTP %d)", s, e.Field, e.HTTPStatus)
	}
	return fmt.Sprintf("%s (HTTP %d)", s, e.HTTPStatus)
}

// Client talks to one box. The zero Timeout means no limit per request.
type Client struct {
	// Base is the box's URL, e.g. http://127.0.0.1:8080 (no trailing path).
	Base string
	// Token is the API bearer token.
	Token string
	// Timeout bounds each request, from sending it to reading the whole
	// answer (an upload included); for the event stream, until its
	// headers arrive.
	Timeout time.Duration
	// HTTP is the HTTP client (http.DefaultClient when nil).
	HTTP *http.Client
}

// New returns a client of the box at base (scheme and host, optionally a
// port), or an error when base is not such a URL.
func New(base, token string, timeout time.Duration) (*Client, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: %q is not a box URL like http://192.0.2.10:8080", base)
	}
	return &Client{Base: strings.TrimRight(base, "/"), Token: token, Timeout: timeout}, nil
}

func (c *Client) http() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

// request builds a request to path (which may carry a query) with the token.
func (c *Client) request(ctx context.Context, method, path string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, body)
	if err != nil {
		return nil, fmt.Errorf("client: %s %s: %w", method, path, err)
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	req.Header.Set("Accept", "application/json")
	return req, nil
}

// withTimeout bounds ctx by the client's Timeout.
func (c *Client) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if c.Timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, c.Timeout)
}

// do sends a request whose body (may be nil) has content type ctype and
// decodes a 2xx JSON answer into out (when not nil). It returns the HTTP
// status of a 2xx answer; any other answer is an *APIError.
func (c *Client) do(ctx context.Context, method, path string, body io.Reader, ctype string, out any) (int, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	req, err := c.request(ctx, method, path, body)
	if err != nil {
		return 0, err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := c.http().Do(req)
	if err != nil {
		return 0, fmt.Errorf("client: %s %s: %w", method, c.Base+path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, apiError(resp)
	}
	if out == nil {
		io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return resp.StatusCode, fmt.Errorf("client: %s %s: reading the answer (HTTP %d): %w", method, path, resp.StatusCode, err)
	}
	return resp.StatusCode, nil
}

// apiError reads an error answer. An answer that is not the API's error
// JSON (a proxy's page) becomes an APIError with code "http_<status>".
func apiError(resp *http.Response) *APIError {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var body struct {
		Error *APIError `json:"error"`
	}
	if json.Unmarshal(b, &body) == nil && body.Error != nil && body.Error.Code != "" {
		body.Error.HTTPStatus = resp.StatusCode
		return body.Error
	}
	msg := strings.TrimSpace(string(b))
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	return &APIError{HTTPStatus: resp.StatusCode, Code: fmt.Sprintf("http_%d", resp.StatusCode), Message: msg}
}

// notSupported turns a 404 on a collection or stream path into
// ErrNotSupported (the *APIError still wrapped); other errors pass
// unchanged.
func notSupported(err error, method, path string) error {
	var ae *APIError
	if errors.As(err, &ae) && ae.HTTPStatus == http.StatusNotFound {
		return fmt.Errorf("%w: %s %s answered %w", ErrNotSupported, method, path, ae)
	}
	return err
}
