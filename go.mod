module github.com/faxbox/faxbox

go 1.26

require (
	github.com/oklog/ulid/v2 v2.1.1
	go.etcd.io/bbolt v1.5.0
	golang.org/x/image v0.33.0
)

require golang.org/x/sys v0.45.0 // indirect
