// Package mail sends and receives the box's e-mail: a durable outbox
// submitting to the office's relay (STARTTLS, AUTH), used for fax-to-e-mail
// and per-job result mails, and the SMTP listener that turns mail to
// <number>@<fax domain> into fax jobs.
package mail

// Attachment is a file sent with a message. Enqueue copies it into the
// outbox (the file at Path may go once Enqueue returns).
type Attachment struct {
	Name        string `json:"name"`         // file name shown to the recipient
	ContentType string `json:"content_type"` // e.g. application/pdf
	Path        string `json:"path"`
}

// Message is one mail to send.
type Message struct {
	To          []string     `json:"to"` // addresses (validated by Enqueue)
	Subject     string       `json:"subject"`
	Text        string       `json:"text"` // plain-text body
	Attachments []Attachment `json:"attachments,omitempty"`
	// Ref names what the mail is about (a job or received-fax id), for logs
	// and status.
	Ref string `json:"ref,omitempty"`
}

// Mailer queues messages durably: Enqueue returns once the message (with
// copies of its attachments) is stored, and the outbox keeps trying to
// submit it (with backoff) until the relay accepts it or refuses it for good
// (5xx, or not accepted within smtp.give_up_after). Without a relay Enqueue
// answers ErrNoRelay. Box.Mail (an *Outbox) is the box's Mailer.
type Mailer interface {
	Enqueue(m Message) (id string, err error)
}
