package client

import (
	"context"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"

	"github.com/faxbox/faxbox/firmware/job"
)

// Fax is a fax to submit: the number, the API's optional text fields by
// their API names (max_attempts, retry_interval, priority, send_at,
// expire_at, header, station_id, resolution, page_size, ecm, t38,
// line_group, client_ref, callback_url) and the files, sent in order.
type Fax struct {
	To     string
	Fields map[string]string
	Files  []string
}

// Submit posts f to POST /v1/faxes. The files are opened first (an
// unreadable file is an error before anything is sent) and streamed: none
// is held in memory whole. It returns the job and whether the box already
// had it (same client_ref, same content: HTTP 200 instead of 202).
func (c *Client) Submit(ctx context.Context, f Fax) (*job.Job, bool, error) {
	files := make([]*os.File, 0, len(f.Files))
	defer func() {
		for _, fh := range files {
			fh.Close()
		}
	}()
	for _, p := range f.Files {
		fh, err := os.Open(p)
		if err != nil {
			return nil, false, fmt.Errorf("client: opening %s: %w", p, err)
		}
		files = append(files, fh)
	}
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	written := make(chan struct{})
	go func() { pw.CloseWithError(writeFax(mw, f, files)); close(written) }()
	var j job.Job
	status, err := c.do(ctx, http.MethodPost, "/v1/faxes", pr, mw.FormDataContentType(), &j)
	pr.CloseWithError(io.ErrClosedPipe) // stops the writer if the box answered early
	<-written
	if err != nil {
		return nil, false, err
	}
	return &j, status == http.StatusOK, nil
}

// writeFax writes the multipart body: to, the fields in name order, then
// the files in order.
func writeFax(mw *multipart.Writer, f Fax, files []*os.File) error {
	if err := mw.WriteField("to", f.To); err != nil {
		return err
	}
	names := make([]string, 0, len(f.Fields))
	for k := range f.Fields {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if err := mw.WriteField(k, f.Fields[k]); err != nil {
			return err
		}
	}
	for _, fh := range files {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", multipart.FileContentDisposition("file", filepath.Base(fh.Name())))
		h.Set("Content-Type", "application/octet-stream") // the box types documents by content
		w, err := mw.CreatePart(h)
		if err != nil {
			return err
		}
		if _, err := io.Copy(w, fh); err != nil {
			return fmt.Errorf("client: reading %s: %w", fh.Name(), err)
		}
	}
	return mw.Close()
}

// Get returns fax job id with every attempt.
func (c *Client) Get(ctx context.Context, id string) (*job.Job, error) {
	var j job.Job
	if _, err := c.do(ctx, http.MethodGet, "/v1/faxes/"+url.PathEscape(id), nil, "", &j); err != nil {
		return nil, err
	}
	return &j, nil
}

// Cancel cancels fax job id. pending is true when a call was in progress:
// its hangup is under way and the job ends with the call's result.
func (c *Client) Cancel(ctx context.Context, id string) (j *job.Job, pending bool, err error) {
	j = new(job.Job)
	status, err := c.do(ctx, http.MethodDelete, "/v1/faxes/"+url.PathEscape(id), nil, "", j)
	if err != nil {
		return nil, false, err
	}
	return j, status == http.StatusAccepted, nil
}

// Retry queues a failed or cancelled fax job again.
func (c *Client) Retry(ctx context.Context, id string) (*job.Job, error) {
	var j job.Job
	if _, err := c.do(ctx, http.MethodPost, "/v1/faxes/"+url.PathEscape(id)+"/retry", nil, "", &j); err != nil {
		return nil, err
	}
	return &j, nil
}

// Query selects fax jobs for List; zero fields do not filter. Limit is the
// page size (the API's default when 0, at most 500).
type Query struct {
	Status    job.Status
	ClientRef string
	Since     string // RFC 3339
	Limit     int
	Cursor    string
}

// Page is one page of GET /v1/faxes, newest first.
type Page struct {
	Items      []*job.Job `json:"items"`
	NextCursor string     `json:"next_cursor,omitempty"`
}

// List returns one page of fax jobs; Page.NextCursor, given as the next
// Query's Cursor, pages on.
func (c *Client) List(ctx context.Context, q Query) (*Page, error) {
	v := url.Values{}
	set := func(k, val string) {
		if val != "" {
			v.Set(k, val)
		}
	}
	set("status", string(q.Status))
	set("client_ref", q.ClientRef)
	set("since", q.Since)
	set("cursor", q.Cursor)
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	path := "/v1/faxes"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	var p Page
	if _, err := c.do(ctx, http.MethodGet, path, nil, "", &p); err != nil {
		return nil, err
	}
	return &p, nil
}
