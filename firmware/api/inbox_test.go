package api_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/api"
	"github.com/faxbox/faxbox/firmware/failure"
	"github.com/faxbox/faxbox/firmware/inbox"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/firmware/receiving"
	"github.com/faxbox/faxbox/internal/testkit"
	"github.com/faxbox/faxbox/internal/testkit/testbox"
)

// putReceived stores a received fax of pages pages (a real TIFF and its
// checked PDF; none when pages is 0) as the receiving service would.
func putReceived(t *testing.T, e *testbox.Env, source, caller, did string, pages int) *inbox.Fax {
	t.Helper()
	f := &inbox.Fax{ID: inbox.NewID(), Source: source, CallerID: caller, DID: did, Status: inbox.Received, Pages: pages,
		CreatedAt: time.Now(), EndedAt: time.Now(), Transport: inbox.T38}
	if pages == 0 {
		f.Status, f.Error = inbox.Failed, job.NewError(failure.FaxRemoteNotFax, "FAILED / NO_FAX")
	} else {
		dir := e.Box.Store.DocDir(string(f.ID))
		os.MkdirAll(dir, 0o750)
		tif := filepath.Join(dir, inbox.TIFFFile)
		os.WriteFile(tif, testkit.FaxTIFF(t, pages), 0o640)
		if err := receiving.MakePDF(context.Background(), tif, filepath.Join(dir, inbox.PDFFile), pages); err != nil {
			t.Fatal(err)
		}
		f.PDF, f.TIFF = true, true
	}
	if _, err := e.Box.Store.PutReceived(f, false); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Millisecond) // ids of one millisecond do not sort
	return f
}

func TestInboxAPI(t *testing.T) {
	testkit.Require(t, "tiff2pdf")
	e := testbox.Start(t, nil)
	a := putReceived(t, e, "s1", "0301111", "500", 2)
	b := putReceived(t, e, "s2", "0302222", "501", 0)
	c := putReceived(t, e, "s3", "0301111", "500", 1)

	var l api.InboxList
	if r := e.C.Do(t, "GET", "/v1/inbox?limit=2", nil, "", &l); r.StatusCode != 200 || len(l.Items) != 2 ||
		l.Items[0].ID != c.ID || l.Items[1].ID != b.ID || l.NextCursor != b.ID {
		t.Fatalf("page 1: %d %+v", r.StatusCode, l)
	}
	var l2 api.InboxList
	e.C.Do(t, "GET", "/v1/inbox?limit=2&cursor="+string(l.NextCursor), nil, "", &l2)
	if len(l2.Items) != 1 || l2.Items[0].ID != a.ID || l2.NextCursor != "" {
		t.Fatalf("page 2: %+v", l2)
	}
	for q, want := range map[string]int{"caller_id=0301111": 2, "did=501": 1, "status=failed": 1, "status=received": 2, "read=false": 3, "read=true": 0} {
		var x api.InboxList
		if e.C.Do(t, "GET", "/v1/inbox?"+q, nil, "", &x); len(x.Items) != want {
			t.Errorf("%s: %d faxes, want %d", q, len(x.Items), want)
		}
	}
	for _, q := range []string{"status=lost", "read=maybe", "limit=0", "cursor=fx_1", "since=yesterday"} {
		var er apiErr
		if r := e.C.Do(t, "GET", "/v1/inbox?"+q, nil, "", &er); r.StatusCode != 400 || er.Error.Code != "invalid_field" {
			t.Errorf("%s: %d %+v", q, r.StatusCode, er)
		}
	}

	var got inbox.Fax
	if r := e.C.Do(t, "GET", "/v1/inbox/"+string(a.ID), nil, "", &got); r.StatusCode != 200 || got.Pages != 2 || got.CallerID != "0301111" {
		t.Fatalf("get: %d %+v", r.StatusCode, got)
	}
	for _, id := range []string{"rx_nothere", string(inbox.NewID()), "fx_01"} {
		var er apiErr
		if r := e.C.Do(t, "GET", "/v1/inbox/"+id, nil, "", &er); r.StatusCode != 404 || er.Error.Code != "not_found" {
			t.Errorf("get %s: %d %+v", id, r.StatusCode, er)
		}
	}

	// The documents: the checked PDF with the fax's pages, the TIFF as
	// received; none for a fax of which no page arrived.
	pdf := fetch(t, e, "/v1/inbox/"+string(a.ID)+"/document", 200, "application/pdf")
	tmp := filepath.Join(t.TempDir(), "got.pdf")
	os.WriteFile(tmp, pdf, 0o600)
	if n, err := receiving.PDFPages(context.Background(), tmp); err != nil || n != 2 {
		t.Errorf("the served PDF has %d pages (%v), want 2", n, err)
	}
	tif := fetch(t, e, "/v1/inbox/"+string(a.ID)+"/document?format=tiff", 200, "image/tiff")
	want, _ := os.ReadFile(filepath.Join(e.Box.Store.DocDir(string(a.ID)), inbox.TIFFFile))
	if !bytes.Equal(tif, want) {
		t.Error("the served TIFF is not the received one")
	}
	fetch(t, e, "/v1/inbox/"+string(b.ID)+"/document", 404, "application/json")
	fetch(t, e, "/v1/inbox/"+string(a.ID)+"/document?format=png", 400, "application/json")

	// Read, unread.
	var marked inbox.Fax
	if r := e.C.Do(t, "POST", "/v1/inbox/"+string(a.ID)+"/read", nil, "", &marked); r.StatusCode != 200 || !marked.Read {
		t.Fatalf("mark read: %d %+v", r.StatusCode, marked)
	}
	var x api.InboxList
	if e.C.Do(t, "GET", "/v1/inbox?read=true", nil, "", &x); len(x.Items) != 1 || x.Items[0].ID != a.ID {
		t.Fatalf("read=true: %+v", x)
	}
	if r := e.C.Do(t, "DELETE", "/v1/inbox/"+string(a.ID)+"/read", nil, "", &marked); r.StatusCode != 200 || marked.Read {
		t.Fatalf("mark unread: %d %+v", r.StatusCode, marked)
	}

	// Delete: gone from the API and from the disk.
	if r := e.C.Do(t, "DELETE", "/v1/inbox/"+string(c.ID), nil, "", nil); r.StatusCode != 204 {
		t.Fatalf("delete: %d", r.StatusCode)
	}
	if r := e.C.Do(t, "GET", "/v1/inbox/"+string(c.ID), nil, "", nil); r.StatusCode != 404 {
		t.Fatalf("get deleted: %d", r.StatusCode)
	}
	if r := e.C.Do(t, "DELETE", "/v1/inbox/"+string(c.ID), nil, "", nil); r.StatusCode != 404 {
		t.Fatalf("delete twice: %d", r.StatusCode)
	}
	if _, err := os.Stat(e.Box.Store.DocDir(string(c.ID))); !os.IsNotExist(err) {
		t.Errorf("the deleted fax's documents: %v", err)
	}
	if e.C.Do(t, "GET", "/v1/inbox", nil, "", &x); len(x.Items) != 2 {
		t.Errorf("after delete: %d faxes", len(x.Items))
	}

	// Without the token: 401.
	req, _ := http.NewRequest("GET", e.C.Base+"/v1/inbox", nil)
	if r, err := http.DefaultClient.Do(req); err != nil || r.StatusCode != 401 {
		t.Errorf("no token: %v %v", r, err)
	}
}

// fetch GETs path and checks the status and content type.
func fetch(t *testing.T, e *testbox.Env, path string, status int, ctype string) []byte {
	t.Helper()
	req, _ := http.NewRequest("GET", e.C.Base+path, nil)
	req.Header.Set("Authorization", "Bearer "+testbox.Token)
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	if r.StatusCode != status || r.Header.Get("Content-Type") != ctype {
		t.Errorf("GET %s: %d %s, want %d %s: %.200s", path, r.StatusCode, r.Header.Get("Content-Type"), status, ctype, b)
	}
	return b
}
