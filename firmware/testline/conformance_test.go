package testline_test

import (
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/clock"
	"github.com/faxbox/faxbox/firmware/dialler"
	"github.com/faxbox/faxbox/firmware/dialler/diallertest"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/firmware/testline"
)

// testHarness is the test line with the default prefix and 10 ms pages.
// The test line keeps its calls in the dialler instance: a restart has
// none up.
func testHarness() diallertest.Harness {
	fax := func(id, to string, pages int) dialler.Request {
		return dialler.Request{AttemptID: id, JobID: "fx_" + id, To: to, Line: job.LineAt("test", 0),
			Fax: &dialler.FaxSpec{TIFF: "/nonexistent/" + id + ".tif", FirstPage: 1, Pages: pages, TotalPages: pages}}
	}
	return diallertest.Harness{
		Line: func(testing.TB) diallertest.Open {
			return func(s dialler.Sink) dialler.Dialler {
				return testline.New("9999000", 10*time.Millisecond, clock.Real{}, s)
			}
		},
		Deliver: func(id string) dialler.Request { return fax(id, "99990001", 2) },
		Long:    func(id string) dialler.Request { return fax(id, "+99990001", 1000) },
		Refused: []func(string) dialler.Request{
			func(id string) dialler.Request { return fax(id, "100", 1) }, // not a test number
		},
		Timeout: 10 * time.Second,
	}
}

// TestConformance: the test line is a dialler.Dialler (diallertest).
func TestConformance(t *testing.T) {
	diallertest.Run(t, testHarness())
}
