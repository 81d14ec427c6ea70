// Package inbox holds the records faxbox keeps for every fax it receives:
// the received fax (an "rx_…" id), what Asterisk reported of its reception,
// and the filter the inbox is listed with. The same structs are persisted by
// store and served as JSON by api, so field names are part of the public API.
//
// The service that turns Asterisk's receptions into these records lives in
// package receiving.
package inbox

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/faxbox/faxbox/firmware/job"
	"github.com/oklog/ulid/v2"
)

// ID is a received fax's id: "rx_" and a lower-case ULID, so ids sort by
// the time they were made.
type ID string

// Prefix starts every received fax's id.
const Prefix = "rx_"

var reID = regexp.MustCompile(`^rx_[0-9a-z]{26}$`)

// NewID returns a new received fax id.
func NewID() ID { return ID(Prefix + strings.ToLower(ulid.Make().String())) }

// Valid reports whether id has the form of a received fax's id.
func (id ID) Valid() bool { return reID.MatchString(string(id)) }

// Status is how a reception ended.
type Status string

// Reception outcomes.
const (
	// Received: the fax arrived whole (FAXOPT(status) SUCCESS).
	Received Status = "received"
	// Partial: the reception failed after some pages had arrived; those
	// pages are kept (Pages), the failure is in Error.
	Partial Status = "partial"
	// Failed: no page arrived (a voice call to a fax number, a failed
	// negotiation); the record keeps who called and why it failed.
	Failed Status = "failed"
)

// Valid reports whether s is a known status.
func (s Status) Valid() bool { return s == Received || s == Partial || s == Failed }

// Transport is how the fax came over the line.
type Transport string

// Transports.
const (
	T38  Transport = "t38"
	G711 Transport = "g711"
)

// Files of a received fax in its document directory (store.DocDir(id)).
const (
	TIFFFile = "fax.tif"
	PDFFile  = "fax.pdf"
)

// Fax is a received fax.
type Fax struct {
	ID     ID     `json:"id"`
	Status Status `json:"status"`
	// Read is set by the API's mark-read (an office user saw it).
	Read bool `json:"read"`
	// CallerID is the calling number (digits and +; "" when withheld).
	CallerID string `json:"caller_id"`
	// DID is the dialled number the call came in on (SIP trunk, E1);
	// Port is the DAHDI channel of an analog line ("" on SIP).
	DID  string `json:"did,omitempty"`
	Port string `json:"port,omitempty"`
	// Channel is Asterisk's channel name.
	Channel string `json:"channel,omitempty"`
	// RemoteStationID is the sender's TSI.
	RemoteStationID string    `json:"remote_station_id"`
	Pages           int       `json:"pages"`
	BitRate         int       `json:"bit_rate,omitempty"`
	Resolution      string    `json:"resolution,omitempty"`
	ECM             bool      `json:"ecm"`
	Transport       Transport `json:"transport,omitempty"`
	// StartedAt is when the call reached the box's receive context, EndedAt
	// when it hung up; DurationSeconds the time between.
	StartedAt       time.Time `json:"started_at"`
	EndedAt         time.Time `json:"ended_at"`
	DurationSeconds int       `json:"duration_seconds"`
	// Error is the failure of a partial or failed reception.
	Error *job.Error `json:"error,omitempty"`
	// PDF tells whether the PDF beside the TIFF exists (a fax with pages
	// has both; a failed one neither).
	PDF  bool `json:"pdf"`
	TIFF bool `json:"tiff"`
	// CreatedAt is when faxbox wrote the record.
	CreatedAt time.Time `json:"created_at"`
	// Recovered: the record was made at start-up from what Asterisk left
	// behind (the box was not running when the call ended).
	Recovered bool `json:"recovered,omitempty"`
	// Purged: the documents were deleted after the retention period.
	Purged bool `json:"purged,omitempty"`
	// Source is the reception's key in Asterisk (its Uniqueid), which
	// makes recording a reception idempotent.
	Source string `json:"source"`
}

// Event is the name of the notification of a new received fax, on the
// events stream and in webhooks.
const Event job.Event = "fax.received"

// Reception is what Asterisk reported of one reception (the dialplan's
// FaxboxReceived event, or the same values kept in AstDB).
type Reception struct {
	// UniqueID of the receiving channel: the reception's key.
	UniqueID string
	// File is the TIFF ReceiveFAX wrote ("" or missing when no page came).
	File            string
	Status          string // FAXOPT(status): SUCCESS, FAILED, ...
	Error           string // FAXOPT(error)
	StatusStr       string // FAXOPT(statusstr)
	Pages           int
	BitRate         int
	Resolution      string
	ECM             bool
	Mode            string // FAXMODE: T38 or audio
	RemoteStationID string
	CallerID        string
	DID             string
	Channel         string
	Started, Ended  time.Time
	// Kept: read back from AstDB rather than from the live event.
	Kept bool
}

// Sentinel errors.
var (
	ErrBadID = errors.New("inbox: not a received fax id")
)

// ParseID checks s as a received fax id.
func ParseID(s string) (ID, error) {
	if id := ID(s); id.Valid() {
		return id, nil
	}
	return "", fmt.Errorf("%w: %q", ErrBadID, s)
}

// Filter selects received faxes for a listing, newest first.
type Filter struct {
	Status   Status
	Read     *bool  // only read (true) or unread (false) faxes
	CallerID string // exact
	DID      string // exact
	Since    time.Time
	Cursor   ID // list faxes with ids before this one
	Limit    int
}

// Match reports whether f selects x (Cursor and Limit aside).
func (f Filter) Match(x *Fax) bool {
	switch {
	case f.Status != "" && x.Status != f.Status,
		f.Read != nil && x.Read != *f.Read,
		f.CallerID != "" && x.CallerID != f.CallerID,
		f.DID != "" && x.DID != f.DID,
		!f.Since.IsZero() && x.CreatedAt.Before(f.Since):
		return false
	}
	return true
}
