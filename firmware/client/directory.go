package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/faxbox/faxbox/firmware/directory"
)

// Directory searches the box's phone book (GET /v1/directory?q=); a box
// without a directory is ErrNotSupported.
func (c *Client) Directory(ctx context.Context, q string) ([]directory.Entry, error) {
	var out struct {
		Entries []directory.Entry `json:"entries"`
	}
	if _, err := c.do(ctx, http.MethodGet, "/v1/directory?"+url.Values{"q": {q}}.Encode(), nil, "", &out); err != nil {
		return nil, notSupported(err, "GET", "/v1/directory")
	}
	return out.Entries, nil
}
