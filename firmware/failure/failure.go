// Package failure defines the stable error codes a job's attempts end with.
//
// A code is "class.name" (line.busy, fax.training, document.unreadable). Codes
// are part of the public API: they appear in job records and webhooks and never
// change meaning. Each has a class, a retryable flag and a default message;
// the raw Asterisk or spandsp text is kept beside the code, never instead of it.
package failure

import "strings"

// Code is a stable error code such as "line.busy".
type Code string

// Line-level outcomes: the call did not reach a fax machine.
const (
	LineBusy          Code = "line.busy"
	LineNoAnswer      Code = "line.no_answer"
	LineCongestion    Code = "line.congestion"
	LineRejected      Code = "line.rejected"
	LineInvalidNumber Code = "line.invalid_number"
	LineUnavailable   Code = "line.unavailable"
	LineDropped       Code = "line.dropped"
	LineInterrupted   Code = "line.interrupted"
	NoLineForNumber   Code = "line.no_line_for_number"
	// LineRejectedDestination: the box's destination controls refuse the
	// number (a `destinations` rule with `reject`); it is never dialled.
	LineRejectedDestination Code = "line.rejected_destination"
)

// Fax-level outcomes: a call was answered, the fax session failed.
const (
	FaxNegotiation    Code = "fax.negotiation"
	FaxTraining       Code = "fax.training"
	FaxT38Negotiation Code = "fax.t38_negotiation"
	FaxRemoteNotFax   Code = "fax.remote_not_fax"
	FaxPageErrors     Code = "fax.page_errors"
	FaxRemoteHangup   Code = "fax.remote_hangup"
	FaxTimeout        Code = "fax.timeout"
	FaxProtocol       Code = "fax.protocol"
	FaxEngine         Code = "fax.engine"
)

// Call outcomes.
const (
	CallAgentNoAnswer    Code = "call.agent_no_answer"
	CallCustomerBusy     Code = "call.customer_busy"
	CallCustomerNoAnswer Code = "call.customer_no_answer"
	CallNotAcknowledged  Code = "call.not_acknowledged"
	CallPINRejected      Code = "call.pin_rejected"
	CallDestRefused      Code = "call.destination_refused"
)

// ClassBox is the class of the box outcomes: the box itself is at fault,
// not the line, the far end or the document. They are retried without
// counting against the job's max_attempts, and the box shows an alarm until
// an attempt gets past the fault.
const ClassBox = "box"

// Box outcomes (ClassBox).
const (
	// BoxDocumentAccess: the box's Asterisk could not open a document
	// faxbox had validated (the TIFF is missing where Asterisk looks, or
	// Asterisk's user may not read it).
	BoxDocumentAccess Code = "box.document_access"
)

// Document and job outcomes.
const (
	DocumentUnreadable   Code = "document.unreadable"
	DocumentTooManyPages Code = "document.too_many_pages"
	DocumentTooLarge     Code = "document.too_large"
	DocumentUnsupported  Code = "document.unsupported"
	DocumentTimeout      Code = "document.conversion_timeout"
	DocumentMissing      Code = "document.missing"
	JobExpired           Code = "job.expired"
	JobMaxAttempts       Code = "job.max_attempts"
	JobCancelled         Code = "job.cancelled"
	Internal             Code = "internal.error"
)

// Info describes a code.
type Info struct {
	Code      Code   `json:"code"`
	Class     string `json:"class"`
	Retryable bool   `json:"retryable"`
	Message   string `json:"message"`
}

var table = map[Code]Info{
	LineBusy:          {Retryable: true, Message: "the line was busy"},
	LineNoAnswer:      {Retryable: true, Message: "nobody answered"},
	LineCongestion:    {Retryable: true, Message: "the network was congested"},
	LineRejected:      {Retryable: true, Message: "the call was rejected"},
	LineInvalidNumber: {Retryable: false, Message: "the number is invalid or unallocated"},
	LineUnavailable:   {Retryable: true, Message: "no line or trunk was available"},
	LineDropped:       {Retryable: true, Message: "the call dropped"},
	LineInterrupted:   {Retryable: true, Message: "the attempt was interrupted by a restart"},
	NoLineForNumber:   {Retryable: false, Message: "no line group can dial this number"},

	LineRejectedDestination: {Retryable: false, Message: "the box's destination rules refuse this number"},

	FaxNegotiation:    {Retryable: true, Message: "fax negotiation failed"},
	FaxTraining:       {Retryable: true, Message: "fax training failed"},
	FaxT38Negotiation: {Retryable: true, Message: "T.38 negotiation failed"},
	FaxRemoteNotFax:   {Retryable: true, Message: "the far end answered but is not a fax machine"},
	FaxPageErrors:     {Retryable: true, Message: "too many page errors"},
	FaxRemoteHangup:   {Retryable: true, Message: "the far end hung up during the fax"},
	FaxTimeout:        {Retryable: true, Message: "the fax session timed out"},
	FaxProtocol:       {Retryable: true, Message: "fax protocol error"},
	FaxEngine:         {Retryable: true, Message: "the fax engine failed"},

	CallAgentNoAnswer:    {Retryable: true, Message: "the agent did not answer; the customer was not called"},
	CallCustomerBusy:     {Retryable: true, Message: "the customer's line was busy"},
	CallCustomerNoAnswer: {Retryable: true, Message: "the customer did not answer"},
	CallNotAcknowledged:  {Retryable: true, Message: "the call was answered but not acknowledged"},
	CallPINRejected:      {Retryable: false, Message: "the caller entered a wrong PIN three times"},
	CallDestRefused:      {Retryable: false, Message: "the destination is not allowed (premium, international or outside the allowed patterns)"},

	BoxDocumentAccess: {Retryable: true, Message: "the box's Asterisk could not read the document file (permissions or data directory); the job waits until this is fixed"},

	DocumentUnreadable:   {Retryable: false, Message: "the document could not be read"},
	DocumentTooManyPages: {Retryable: false, Message: "the document has too many pages"},
	DocumentTooLarge:     {Retryable: false, Message: "the document is too large"},
	DocumentUnsupported:  {Retryable: false, Message: "the document type is not supported"},
	DocumentTimeout:      {Retryable: false, Message: "the document took too long to convert"},
	DocumentMissing:      {Retryable: false, Message: "the document file is missing"},
	JobExpired:           {Retryable: false, Message: "the job expired before it could be sent"},
	JobMaxAttempts:       {Retryable: false, Message: "all attempts failed"},
	JobCancelled:         {Retryable: false, Message: "the job was cancelled"},
	Internal:             {Retryable: true, Message: "internal error"},
}

// Class returns the part of the code before the dot ("line" for line.busy).
func (c Code) Class() string {
	if i := strings.IndexByte(string(c), '.'); i > 0 {
		return string(c[:i])
	}
	return string(c)
}

// Lookup returns the description of c. Unknown codes are reported retryable
// with a generic message, so a new code never stops a job by accident.
func Lookup(c Code) Info {
	i, ok := table[c]
	if !ok {
		i = Info{Retryable: true, Message: string(c)}
	}
	i.Code = c
	i.Class = c.Class()
	return i
}

// Known reports whether c is one of the codes defined here.
func Known(c Code) bool { _, ok := table[c]; return ok }

// All returns every defined code.
func All() []Code {
	out := make([]Code, 0, len(table))
	for c := range table {
		out = append(out, c)
	}
	return out
}
