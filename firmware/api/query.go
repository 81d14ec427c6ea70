package api

import (
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// pageQuery reads a list's since (an RFC 3339 time; zero if absent) and
// limit (1 to 500; 50 if absent) from q, or answers which one is invalid.
func pageQuery(q url.Values) (since time.Time, limit int, e *Error) {
	if v := q.Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return since, 0, errf(http.StatusBadRequest, "invalid_field", "since", "since must be an RFC 3339 time")
		}
		since = t
	}
	limit = 50
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			return since, 0, errf(http.StatusBadRequest, "invalid_field", "limit", "limit must be 1 to 500")
		}
		limit = n
	}
	return since, limit, nil
}
