package api_test

import (
	"net/http"
	"testing"

	"github.com/faxbox/faxbox/firmware/config"
	"github.com/faxbox/faxbox/firmware/destctl"
	"github.com/faxbox/faxbox/internal/testkit"
	"github.com/faxbox/faxbox/internal/testkit/testbox"
)

func TestRejectedDestinationRefused(t *testing.T) {
	e := testbox.Start(t, func(c *config.Config) {
		c.Destinations = []destctl.Rule{{Prefix: "99990003", Reject: "no faxes to the test no-answer number"}}
	})
	var er apiErr
	resp := e.C.Submit(t, "/v1/faxes", &er, testkit.File("file", "a.txt", []byte("hi\n")), testkit.Field("to", "99990003"))
	expectErr(t, "rejected number", resp, er, http.StatusUnprocessableEntity, "rejected_destination", "to")
	var out compatAnswer
	e.C.Submit(t, "/faxservice/", &out, testkit.Field("fax", "99990003"), testkit.Field("faxId", "r-1"),
		testkit.Field("returnUrl", "http://192.0.2.7/result.php"), testkit.File("file", "a.txt", []byte("hi\n")))
	if out.Status != "fail" || out.Code != "rejected_destination" {
		t.Fatalf("classic endpoint: %+v", out)
	}
	noDocuments(t, e)
	// Other numbers are not touched by the rule.
	var ok struct{ ID string }
	if resp := e.C.Submit(t, "/v1/faxes", &ok, fax()...); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("another number: %d", resp.StatusCode)
	}
	var st struct {
		Destinations []map[string]any `json:"destinations"`
	}
	if resp := e.C.Do(t, "GET", "/v1/status", nil, "", &st); resp.StatusCode != 200 || st.Destinations == nil {
		t.Fatalf("status: %d, destinations %v (want a list, even empty)", resp.StatusCode, st.Destinations)
	}
}
