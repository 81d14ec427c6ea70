package routing

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/faxbox/faxbox/firmware/inbox"
	"github.com/faxbox/faxbox/firmware/store"
)

// Signed download URLs: GET /v1/inbox/{id}/document?format=F&expires=E&sig=S
// serves the document without a token until E (Unix seconds) when S is the
// hex HMAC-SHA256, under the box's link key, of "id\nformat\nE". The key is
// derived from webhook_secret when one is set (a receiver that verifies the
// webhooks holds it anyway), else it is a random key kept in the store.

// Link errors (VerifyLink).
var (
	ErrLinkExpired = errors.New("routing: the download link has expired")
	ErrLinkBad     = errors.New("routing: the download link's signature is wrong")
)

const linkKeyState = "routing_link_key"

// LinkKey returns the key download URLs are signed with: derived from
// secret, or (without one) the random key stored in st, made on first use.
func LinkKey(secret string, st *store.DB) ([]byte, error) {
	if secret != "" {
		m := hmac.New(sha256.New, []byte(secret))
		m.Write([]byte("faxbox inbox download links"))
		return m.Sum(nil), nil
	}
	var k []byte
	ok, err := st.GetState(linkKeyState, &k)
	if err != nil {
		return nil, fmt.Errorf("routing: read the link key: %w", err)
	}
	if ok && len(k) == 32 {
		return k, nil
	}
	k = make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("routing: make a link key: %w", err)
	}
	if err := st.PutState(linkKeyState, k); err != nil {
		return nil, fmt.Errorf("routing: store the link key: %w", err)
	}
	return k, nil
}

func linkSig(key []byte, id inbox.ID, format string, expires int64) string {
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "%s\n%s\n%d", id, format, expires)
	return hex.EncodeToString(m.Sum(nil))
}

// LinkPath returns the signed path and query of fax id's document in
// format (pdf or tiff), valid until expires.
func LinkPath(key []byte, id inbox.ID, format string, expires time.Time) string {
	e := expires.Unix()
	q := url.Values{"format": {format}, "expires": {strconv.FormatInt(e, 10)}, "sig": {linkSig(key, id, format, e)}}
	return "/v1/inbox/" + string(id) + "/document?" + q.Encode()
}

// Signed reports whether query q carries a link signature (sig or
// expires): such a request is judged by VerifyLink alone.
func Signed(q url.Values) bool { return q.Has("sig") || q.Has("expires") }

// VerifyLink checks the signature in q (format, expires, sig) for fax id
// at now: nil, ErrLinkExpired or ErrLinkBad.
func VerifyLink(key []byte, id inbox.ID, q url.Values, now time.Time) error {
	format := q.Get("format")
	if format == "" {
		format = "pdf"
	}
	e, err := strconv.ParseInt(q.Get("expires"), 10, 64)
	sig := strings.ToLower(q.Get("sig"))
	if err != nil || len(key) == 0 || !hmac.Equal([]byte(sig), []byte(linkSig(key, id, format, e))) {
		return ErrLinkBad
	}
	if !now.Before(time.Unix(e, 0)) {
		return ErrLinkExpired
	}
	return nil
}
