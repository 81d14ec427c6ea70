module github.com/faxbox/faxbox

go 1.26

require (
	github.com/OpenPrinting/goipp v1.2.0
	github.com/creack/pty v1.1.24
	github.com/oklog/ulid/v2 v2.1.1
	github.com/pion/rtp v1.10.6
	github.com/staskobzar/goami2 v1.7.6
	github.com/tarm/serial v0.0.0-20180830185346-98f6abe2eb07
	github.com/warthog618/go-gpiocdev v0.9.1
	github.com/warthog618/go-gpiosim v0.1.2
	go.etcd.io/bbolt v1.5.0
	golang.org/x/image v0.33.0
	golang.org/x/sys v0.45.0
)

require (
	github.com/Azure/go-ntlmssp v0.0.0-20221128193559-754e69321358 // indirect
	github.com/emersion/go-ical v0.0.0-20240127095438-fc1c9d8fb2b6
	github.com/emersion/go-webdav v0.6.0
	github.com/go-asn1-ber/asn1-ber v1.5.8-0.20250403174932-29230038a667 // indirect
	github.com/go-ldap/ldap/v3 v3.4.11
	github.com/google/uuid v1.6.0 // indirect
	github.com/teambition/rrule-go v1.8.2
)

require (
	github.com/chromedp/cdproto v0.160.1 // indirect
	github.com/chromedp/chromedp v0.23.1
	github.com/emersion/go-message v0.18.2
	github.com/emersion/go-sasl v0.0.0-20241020182733-b788ff22d5a6
	github.com/emersion/go-smtp v0.26.0
	github.com/go-json-experiment/json v0.0.0-20260213210345-44df1a37e875 // indirect
	github.com/pion/randutil v0.1.0 // indirect
	github.com/pkg/errors v0.9.1 // indirect
	golang.org/x/crypto v0.43.0 // indirect
	golang.org/x/mod v0.29.0 // indirect
	golang.org/x/net v0.46.0
	golang.org/x/sync v0.20.0 // indirect
	golang.org/x/text v0.31.0 // indirect
	golang.org/x/tools v0.38.0 // indirect
	mellium.im/reader v0.1.0 // indirect
	mellium.im/sasl v0.3.2
	mellium.im/xmlstream v0.15.4
	mellium.im/xmpp v0.22.0
)
