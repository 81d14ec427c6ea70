package mail

import (
	"fmt"
	"strings"
	"time"

	"github.com/faxbox/faxbox/firmware/job"
)

// ResultMessage is the mail that tells j's NotifyEmail how the job ended
// (ev is its final event): the outcome in the subject, and in the text the
// pages, the tries, the error with its code, and each attempt.
func ResultMessage(ev job.Event, j *job.Job) Message {
	outcome := map[job.Event]string{job.EventFaxDelivered: "delivered", job.EventFaxFailed: "failed", job.EventFaxCancelled: "cancelled"}[ev]
	if outcome == "" {
		outcome = string(j.Status)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Your fax to %s was %s.\n\n", j.To, outcome)
	fmt.Fprintf(&b, "Job:      %s\n", j.ID)
	if j.ClientRef != "" && !strings.HasPrefix(j.ClientRef, mailRefPrefix) {
		fmt.Fprintf(&b, "Ref:      %s\n", j.ClientRef)
	}
	fmt.Fprintf(&b, "Status:   %s\n", j.Status)
	fmt.Fprintf(&b, "Pages:    %d of %d confirmed by the receiver\n", j.PagesConfirmed, j.Pages)
	fmt.Fprintf(&b, "Calls:    %d\n", j.Dials)
	fmt.Fprintf(&b, "Queued:   %s\n", j.CreatedAt.UTC().Format(time.RFC1123))
	if j.CompletedAt != nil {
		fmt.Fprintf(&b, "Finished: %s\n", j.CompletedAt.UTC().Format(time.RFC1123))
	}
	if j.Error != nil {
		fmt.Fprintf(&b, "Error:    %s (%s)\n", j.Error.Message, j.Error.Code)
	}
	if len(j.Files) > 0 {
		b.WriteString("\nDocuments:\n")
		for _, f := range j.Files {
			fmt.Fprintf(&b, "  %s (%s, %d bytes)\n", f.Name, f.Type, f.Size)
		}
	}
	if len(j.Attempts) > 0 {
		b.WriteString("\nCalls:\n")
		for _, a := range j.Attempts {
			fmt.Fprintf(&b, "  %d. %s  %s", a.N, a.StartedAt.UTC().Format("2006-01-02 15:04:05Z"), a.Result)
			if a.PagesSent > 0 {
				fmt.Fprintf(&b, ", %d pages", a.PagesSent)
			}
			if a.Error != nil {
				fmt.Fprintf(&b, ", %s", a.Error.Code)
			}
			b.WriteString("\n")
		}
	}
	b.WriteString("\n-- \nfaxbox\n")
	return Message{To: []string{j.NotifyEmail}, Subject: fmt.Sprintf("Fax to %s %s (%d/%d pages) [%s]", j.To, outcome, j.PagesConfirmed, j.Pages, j.ID),
		Text: b.String(), Ref: j.ID}
}
