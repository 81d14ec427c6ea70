package dialler

import (
	"errors"
	"testing"

	"github.com/faxbox/faxbox/firmware/job"
)

// A request is a fax or a call, never both or neither.
func TestRequestIsFaxOrCall(t *testing.T) {
	fax := Request{AttemptID: "at_1", Fax: &FaxSpec{TIFF: "/x.tif"}}
	call := Request{AttemptID: "at_2", Call: &CallSpec{Kind: job.CallMessage}}
	both := Request{AttemptID: "at_3", Fax: &FaxSpec{}, Call: &CallSpec{}}
	neither := Request{AttemptID: "at_4"}
	if fax.Check() != nil || fax.Kind() != job.KindFax || call.Check() != nil || call.Kind() != job.KindCall {
		t.Fatal("a fax or a call refused")
	}
	for _, r := range []Request{both, neither} {
		if err := r.Check(); !errors.Is(err, ErrRequest) {
			t.Errorf("%s: Check() = %v, want ErrRequest", r.AttemptID, err)
		}
	}
}
