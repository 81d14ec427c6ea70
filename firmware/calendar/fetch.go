package calendar

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/emersion/go-ical"
	"github.com/emersion/go-webdav"
	"github.com/emersion/go-webdav/caldav"

	"github.com/faxbox/faxbox/firmware/config"
)

// Kind is what a calendar URL turned out to be.
type Kind string

// Kinds of calendar URLs.
const (
	KindUnknown Kind = ""       // not reached yet
	KindCalDAV  Kind = "caldav" // a CalDAV calendar, or a collection of them
	KindICS     Kind = "ics"    // a plain iCalendar file
)

// maxCollections bounds the calendars found under one CalDAV URL.
const maxCollections = 16

// multigetBatch is how many objects one calendar-multiget asks for.
const multigetBatch = 20

// object is a CalDAV calendar object as last fetched.
type object struct {
	etag string
	cal  *ical.Calendar
}

// source fetches one configured calendar, remembering what it saw (ETags,
// ctags, the objects) so that a poll reads only what changed. It is used by
// one goroutine at a time.
type source struct {
	cfg  config.Calendar
	base http.RoundTripper

	kind  Kind
	etag  string            // ICS: the file's ETag
	ics   *ical.Calendar    // ICS: the file as last read
	ctags map[string]string // CalDAV: collection → getctag/sync-token
	colls []string          // CalDAV: the calendar collections' paths
	objs  map[string]object // CalDAV: object path → object
	bad   map[string]string // CalDAV: object path → why it could not be read
}

func newSource(cfg config.Calendar, base http.RoundTripper) *source {
	if base == nil {
		base = http.DefaultTransport
	}
	return &source{cfg: cfg, base: base, ctags: map[string]string{}, objs: map[string]object{}, bad: map[string]string{}}
}

// sync fetches the calendar: changed reports whether cals differs from the
// last sync's. The first sync finds out the URL's kind.
func (s *source) sync(ctx context.Context) (cals []*ical.Calendar, changed bool, err error) {
	budget := int64(2 * MaxBytes)
	hc := &http.Client{Transport: guard{base: s.base, budget: &budget}, CheckRedirect: noRedirect}
	if s.kind == KindUnknown {
		if err := s.detect(ctx, hc); err != nil {
			return nil, false, err
		}
	}
	if s.kind == KindICS {
		return s.syncICS(ctx, hc)
	}
	return s.syncCalDAV(ctx, hc)
}

func noRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 3 {
		return errors.New("calendar: more than 3 redirects")
	}
	if len(via) > 0 && req.URL.Host != via[0].URL.Host {
		return errors.New("calendar: a redirect to another host (credentials are not sent there)")
	}
	return nil
}

func (s *source) request(ctx context.Context, method, u string, body []byte) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("calendar: %s %s: %w", method, s.cfg.URL, err)
	}
	if s.cfg.Username != "" {
		req.SetBasicAuth(s.cfg.Username, s.cfg.Password)
	}
	return req, nil
}

// propfind is a PROPFIND's answer, as much of it as the calendar needs.
type propfind struct {
	Responses []struct {
		Href     string `xml:"href"`
		Propstat []struct {
			Prop struct {
				ResourceType struct {
					Collection *struct{} `xml:"DAV: collection"`
					Calendar   *struct{} `xml:"urn:ietf:params:xml:ns:caldav calendar"`
				} `xml:"DAV: resourcetype"`
				CTag      string `xml:"http://calendarserver.org/ns/ getctag"`
				SyncToken string `xml:"DAV: sync-token"`
			} `xml:"prop"`
			Status string `xml:"status"`
		} `xml:"propstat"`
	} `xml:"response"`
}

const propfindBody = `<?xml version="1.0" encoding="utf-8"?>
<d:propfind xmlns:d="DAV:" xmlns:cs="http://calendarserver.org/ns/"><d:prop><d:resourcetype/><cs:getctag/><d:sync-token/></d:prop></d:propfind>`

// stat asks for u's resource type and change tag (PROPFIND, Depth 0). It
// reports ok false when the server answers anything but 207 (a plain web
// server that knows no WebDAV).
func (s *source) stat(ctx context.Context, hc *http.Client, u string) (coll, cal bool, tag string, ok bool, err error) {
	req, err := s.request(ctx, "PROPFIND", u, []byte(propfindBody))
	if err != nil {
		return false, false, "", false, err
	}
	req.Header.Set("Depth", "0")
	req.Header.Set("Content-Type", "application/xml; charset=utf-8")
	resp, err := hc.Do(req)
	if err != nil {
		return false, false, "", false, fmt.Errorf("calendar: PROPFIND %s: %w", redact(u), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		return false, false, "", false, fmt.Errorf("calendar: PROPFIND %s: HTTP %d (username and password?)", redact(u), resp.StatusCode)
	}
	if resp.StatusCode != http.StatusMultiStatus {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return false, false, "", false, nil
	}
	var pf propfind
	if err := xml.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&pf); err != nil {
		return false, false, "", false, fmt.Errorf("calendar: PROPFIND %s: %w", redact(u), err)
	}
	for _, r := range pf.Responses {
		for _, ps := range r.Propstat {
			if !strings.Contains(ps.Status, " 200 ") {
				continue
			}
			p := ps.Prop
			coll = coll || p.ResourceType.Collection != nil
			cal = cal || p.ResourceType.Calendar != nil
			if p.CTag != "" {
				tag = "ctag:" + p.CTag
			} else if p.SyncToken != "" && tag == "" {
				tag = "sync:" + p.SyncToken
			}
		}
	}
	return coll, cal, tag, true, nil
}

// detect finds out what the URL is: a CalDAV calendar, a collection of
// calendars (each is subscribed), or else a plain .ics file.
func (s *source) detect(ctx context.Context, hc *http.Client) error {
	coll, cal, _, ok, err := s.stat(ctx, hc, s.cfg.URL)
	switch {
	case err != nil:
		return err
	case !ok || !coll:
		s.kind = KindICS
		return nil
	case cal:
		s.kind, s.colls = KindCalDAV, []string{s.cfg.URL}
		return nil
	}
	cc, err := s.caldav(hc)
	if err != nil {
		return err
	}
	found, err := cc.FindCalendars(ctx, s.cfg.URL)
	if err != nil {
		return fmt.Errorf("calendar: find calendars under %s: %w", redact(s.cfg.URL), err)
	}
	if len(found) == 0 {
		return fmt.Errorf("calendar: %s is a WebDAV collection without calendars", redact(s.cfg.URL))
	}
	base, _ := url.Parse(s.cfg.URL)
	for i, c := range found {
		if i == maxCollections {
			break
		}
		ref, err := url.Parse(c.Path)
		if err != nil {
			continue
		}
		s.colls = append(s.colls, base.ResolveReference(ref).String())
	}
	s.kind = KindCalDAV
	return nil
}

func (s *source) caldav(hc *http.Client) (*caldav.Client, error) {
	var c webdav.HTTPClient = hc
	if s.cfg.Username != "" {
		c = webdav.HTTPClientWithBasicAuth(hc, s.cfg.Username, s.cfg.Password)
	}
	cc, err := caldav.NewClient(c, s.cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("calendar: %s: %w", redact(s.cfg.URL), err)
	}
	return cc, nil
}

// syncICS reads the .ics file unless its ETag is unchanged (304).
func (s *source) syncICS(ctx context.Context, hc *http.Client) ([]*ical.Calendar, bool, error) {
	req, err := s.request(ctx, http.MethodGet, s.cfg.URL, nil)
	if err != nil {
		return nil, false, err
	}
	req.Header.Set("Accept", "text/calendar")
	if s.etag != "" && s.ics != nil {
		req.Header.Set("If-None-Match", s.etag)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, false, fmt.Errorf("calendar: GET %s: %w", redact(s.cfg.URL), err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified && s.ics != nil:
		return []*ical.Calendar{s.ics}, false, nil
	case resp.StatusCode != http.StatusOK:
		return nil, false, fmt.Errorf("calendar: GET %s: HTTP %d", redact(s.cfg.URL), resp.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxBytes+1))
	if err != nil {
		return nil, false, fmt.Errorf("calendar: GET %s: %w", redact(s.cfg.URL), err)
	}
	cal, err := Decode(data)
	if err != nil {
		return nil, false, err
	}
	s.ics, s.etag = cal, resp.Header.Get("ETag")
	return []*ical.Calendar{cal}, true, nil
}

// syncCalDAV reads each collection whose ctag (or sync token) changed:
// the objects' ETags by PROPFIND, then the new and changed objects by
// calendar-multiget. Objects gone from the server are dropped.
func (s *source) syncCalDAV(ctx context.Context, hc *http.Client) ([]*ical.Calendar, bool, error) {
	cc, err := s.caldav(hc)
	if err != nil {
		return nil, false, err
	}
	changed := false
	var errs []error
	for _, coll := range s.colls {
		ch, err := s.syncCollection(ctx, hc, cc, coll)
		changed = changed || ch
		if err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, false, err
	}
	paths := make([]string, 0, len(s.objs))
	for p := range s.objs {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	cals := make([]*ical.Calendar, 0, len(paths))
	for _, p := range paths {
		cals = append(cals, s.objs[p].cal)
	}
	return cals, changed, nil
}

// syncCollection brings the objects of one calendar collection up to date.
func (s *source) syncCollection(ctx context.Context, hc *http.Client, cc *caldav.Client, coll string) (bool, error) {
	_, _, tag, ok, err := s.stat(ctx, hc, coll)
	if err != nil {
		return false, err
	}
	if !ok {
		return false, fmt.Errorf("calendar: %s no longer answers PROPFIND", redact(coll))
	}
	if tag != "" && tag == s.ctags[coll] {
		return false, nil
	}
	wd, err := webdav.NewClient(hc, coll)
	if err != nil {
		return false, fmt.Errorf("calendar: %s: %w", redact(coll), err)
	}
	if s.cfg.Username != "" {
		wd, _ = webdav.NewClient(webdav.HTTPClientWithBasicAuth(hc, s.cfg.Username, s.cfg.Password), coll)
	}
	collPath := mustPath(coll)
	infos, err := wd.ReadDir(ctx, collPath, false)
	if err != nil {
		return false, fmt.Errorf("calendar: list %s: %w", redact(coll), err)
	}
	seen := map[string]bool{}
	var want []string
	for _, fi := range infos {
		if fi.IsDir || strings.TrimSuffix(fi.Path, "/") == strings.TrimSuffix(collPath, "/") {
			continue
		}
		if len(seen) >= MaxEvents {
			return false, fmt.Errorf("calendar: %s holds more than %d objects", redact(coll), MaxEvents)
		}
		seen[fi.Path] = true
		if o, ok := s.objs[fi.Path]; !ok || o.etag == "" || o.etag != fi.ETag {
			want = append(want, fi.Path)
		}
	}
	changed := len(want) > 0
	for p := range s.objs {
		if strings.HasPrefix(p, collPath) && !seen[p] {
			delete(s.objs, p)
			delete(s.bad, p)
			changed = true
		}
	}
	if err := s.fetchObjects(ctx, cc, collPath, want); err != nil {
		return changed, err
	}
	s.ctags[coll] = tag
	return changed, nil
}

// fetchObjects reads the objects at paths by calendar-multiget in batches;
// a batch the server or the decoder fails is read again object by object,
// so one malformed object costs only itself (it is left out).
func (s *source) fetchObjects(ctx context.Context, cc *caldav.Client, coll string, paths []string) error {
	req := caldav.CalendarCompRequest{Name: ical.CompCalendar, AllProps: true, AllComps: true}
	for len(paths) > 0 {
		n := min(len(paths), multigetBatch)
		batch := paths[:n]
		paths = paths[n:]
		objs, err := cc.MultiGetCalendar(ctx, coll, &caldav.CalendarMultiGet{Paths: batch, CompRequest: req})
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			objs = nil
			for _, p := range batch {
				o, err := cc.GetCalendarObject(ctx, p)
				if err != nil {
					s.objs[p] = object{cal: ical.NewCalendar()} // read again next time
					s.bad[p] = clean(err.Error(), 200)
					continue
				}
				objs = append(objs, *o)
			}
		}
		for _, o := range objs {
			s.objs[o.Path] = object{etag: o.ETag, cal: o.Data}
			delete(s.bad, o.Path)
		}
	}
	return nil
}

func mustPath(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return u
	}
	return p.Path
}

// problems lists the CalDAV objects that could not be read.
func (s *source) problems() []Problem {
	var ps []Problem
	for p, why := range s.bad {
		ps = append(ps, Problem{UID: "(object " + clean(p, 200) + ")", Reason: why})
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].UID < ps[j].UID })
	return ps
}

// redact is u without its query (which may hold a token).
func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(a malformed URL)"
	}
	p.RawQuery, p.User = "", nil
	return p.String()
}
