package client

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"

	"github.com/faxbox/faxbox/firmware/selftest"
)

// Qualify starts a qualification of SIP trunk trunk (POST
// /v1/trunks/{name}/qualify), with a test fax to number ("": the box's
// qualify.number).
func (c *Client) Qualify(ctx context.Context, trunk, number string) (*selftest.Run, error) {
	var body []byte
	if number != "" {
		body, _ = json.Marshal(map[string]string{"number": number})
	}
	var run selftest.Run
	if _, err := c.do(ctx, http.MethodPost, "/v1/trunks/"+url.PathEscape(trunk)+"/qualify", bytes.NewReader(body), "application/json", &run); err != nil {
		return nil, err
	}
	return &run, nil
}

// Qualification returns trunk's latest qualification (GET
// /v1/trunks/{name}/qualify).
func (c *Client) Qualification(ctx context.Context, trunk string) (*selftest.Run, error) {
	var run selftest.Run
	if _, err := c.do(ctx, http.MethodGet, "/v1/trunks/"+url.PathEscape(trunk)+"/qualify", nil, "", &run); err != nil {
		return nil, err
	}
	return &run, nil
}
