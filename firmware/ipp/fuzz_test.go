package ipp

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/OpenPrinting/goipp"

	"github.com/faxbox/faxbox/firmware/config"
	"github.com/faxbox/faxbox/firmware/engine"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/firmware/store"
)

// noJobs is a box without jobs whose submissions are all refused.
type noJobs struct{}

func (noJobs) Get(string) (*job.Job, error)         { return nil, engine.ErrNotFound }
func (noJobs) Cancel(string) (*job.Job, error)      { return nil, engine.ErrNotFound }
func (noJobs) Rejected(string) (string, bool)       { return "", false }
func (noJobs) Route(string, string) (string, error) { return "test", nil }

func refuse(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(http.StatusUnprocessableEntity)
	w.Write([]byte(`{"error":{"code":"unreadable_document","message":"refused by the fuzz box"}}`))
}

// fuzzService is a Service on a real store whose submissions are refused.
func fuzzService(f *testing.F) *Service {
	dir := f.TempDir()
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	cfg := config.Default()
	cfg.Tokens = []string{"fuzz-token-1"}
	cfg.Limits.MaxUploadBytes = 1 << 20
	s, err := New(Options{Cfg: cfg, Submit: http.HandlerFunc(refuse), Jobs: noJobs{}, Store: st, SpoolDir: filepath.Join(dir, "spool")})
	if err != nil {
		f.Fatal(err)
	}
	return s
}

// seedRequests are well-formed requests of every operation.
func seedRequests(f *testing.F) [][]byte {
	dest := goipp.MakeAttr("destination-uris", goipp.TagBeginCollection,
		goipp.Collection{goipp.MakeAttr("destination-uri", goipp.TagURI, goipp.String("tel:99990001"))})
	var out [][]byte
	for i, op := range operations {
		m := goipp.NewRequest(goipp.DefaultVersion, op, uint32(i+1))
		m.Operation = goipp.Attributes{
			goipp.MakeAttr("attributes-charset", goipp.TagCharset, goipp.String("utf-8")),
			goipp.MakeAttr("attributes-natural-language", goipp.TagLanguage, goipp.String("en")),
			goipp.MakeAttr("printer-uri", goipp.TagURI, goipp.String("ipp://localhost/ipp/faxout")),
			goipp.MakeAttr("job-id", goipp.TagInteger, goipp.Integer(1)),
			goipp.MakeAttr("last-document", goipp.TagBoolean, goipp.Boolean(true)),
			goipp.MakeAttr("requested-attributes", goipp.TagKeyword, goipp.String("all")),
		}
		m.Job = goipp.Attributes{dest, goipp.MakeAttr("media", goipp.TagKeyword, goipp.String("iso_a4_210x297mm"))}
		b, err := m.EncodeBytes()
		if err != nil {
			f.Fatal(err)
		}
		if op == goipp.OpPrintJob || op == goipp.OpSendDocument {
			b = append(b, "%PDF-1.4\n%%EOF\n"...)
		}
		out = append(out, b)
	}
	raster, _ := testRaster()
	return append(out, append(bytes.Clone(out[0]), raster...))
}

// FuzzRequest feeds arbitrary bytes to the service as IPP requests: every
// one is answered HTTP 200 with a decodable IPP response that echoes the
// request-id, and nothing panics.
func FuzzRequest(f *testing.F) {
	for _, b := range seedRequests(f) {
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Add([]byte{})
	f.Add([]byte{2, 0, 0, 11, 0, 0, 0, 1, 1, 0x34, 0, 1, 'c', 0, 0, 0x4a, 0, 0, 0, 1, 'm', 0x37, 0, 0, 0, 0, 3})
	s := fuzzService(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, Path, bytes.NewReader(body))
		req.RemoteAddr = "127.0.0.1:40000"
		req.Header.Set("Content-Type", "application/ipp")
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("HTTP %d", rec.Code)
		}
		var m goipp.Message
		if err := m.DecodeBytes(rec.Body.Bytes()); err != nil {
			t.Fatalf("undecodable answer: %v", err)
		}
		if len(body) >= 8 {
			if id := uint32(body[4])<<24 | uint32(body[5])<<16 | uint32(body[6])<<8 | uint32(body[7]); m.RequestID != id {
				t.Fatalf("request-id %d, want %d", m.RequestID, id)
			}
		}
	})
}
