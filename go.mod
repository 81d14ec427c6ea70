module github.com/faxbox/faxbox

go 1.26

require (
	github.com/creack/pty v1.1.24
	github.com/oklog/ulid/v2 v2.1.1
	github.com/staskobzar/goami2 v1.7.6
	github.com/tarm/serial v0.0.0-20180830185346-98f6abe2eb07
	github.com/warthog618/go-gpiocdev v0.9.1
	github.com/warthog618/go-gpiosim v0.1.2
	go.etcd.io/bbolt v1.5.0
	golang.org/x/image v0.33.0
	golang.org/x/sys v0.45.0
)

require github.com/pkg/errors v0.9.1 // indirect
