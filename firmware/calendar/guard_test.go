package calendar

import (
	"errors"
	"io"
	"strings"
	"testing"
)

func readGuarded(s string, budget int64) error {
	b := &guardedBody{rc: io.NopCloser(strings.NewReader(s)), budget: &budget, prev: '\n', xml: strings.HasPrefix(s, "<")}
	_, err := io.ReadAll(b)
	return err
}

func TestGuard(t *testing.T) {
	obj := "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nSUMMARY:a;begin: b\r\nBEGIN:VALARM\r\nEND:VALARM\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
	multistatus := "<d:multistatus>" + strings.Repeat("<d:response><c:calendar-data>"+obj+"</c:calendar-data></d:response>", 50) + "</d:multistatus>"
	escaped := strings.ReplaceAll(multistatus, "\r\n", "&#13;&#10;")
	for name, s := range map[string]string{"ics": strings.Repeat(obj, 50), "xml": multistatus, "xml escaped": escaped} {
		if err := readGuarded(s, 1<<20); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	deep := "BEGIN:VCALENDAR\r\n" + strings.Repeat("BEGIN:X\r\n", MaxDepth+1)
	for name, s := range map[string]string{
		"ics":         deep,
		"xml":         "<c:calendar-data>" + deep,
		"xml escaped": "<c:calendar-data>" + strings.ReplaceAll(deep, "\r\n", "&#10;"),
	} {
		if err := readGuarded(s, 1<<20); !errors.Is(err, errTooDeep) {
			t.Errorf("deep %s: %v", name, err)
		}
	}
	// In iCalendar text a '<' is a character, not the end of an object.
	if err := readGuarded(strings.Repeat("BEGIN:X\r\nX:<\r\n", MaxDepth+1), 1<<20); !errors.Is(err, errTooDeep) {
		t.Errorf("deep with '<': %v", err)
	}
	if err := readGuarded(strings.Repeat("x", 1000), 999); !errors.Is(err, errTooLarge) {
		t.Errorf("over the budget: %v", err)
	}
}
