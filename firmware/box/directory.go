package box

import (
	"github.com/faxbox/faxbox/firmware/directory"
)

// openDirectory starts reading the office directory (ldap; none: nothing)
// in the background: the box starts while the directory server is down,
// showing the directory alarm until a read succeeds.
func (b *Box) openDirectory(o Options) error {
	if !b.Cfg.LDAP.Enabled() {
		return nil
	}
	d, err := directory.New(directory.Config{LDAP: b.Cfg.LDAP, Deny: b.Cfg.Calls.DenyPrefixes,
		Source: o.DirectorySource, Clock: b.Clock, Log: b.Log})
	if err != nil {
		return err
	}
	b.directory = d
	d.Start()
	return nil
}

// attachDirectory lets the API admit the directory's users and answer
// GET /v1/directory.
func (b *Box) attachDirectory() {
	if b.directory != nil {
		b.API.Auth, b.API.Book = b.directory, b.directory
	}
}

// directoryCaller reports a caller of the directory's callback group
// (inbound.Config's Allowed).
func (b *Box) directoryCaller(caller string) bool {
	return b.directory != nil && b.directory.CallbackAllowed(caller)
}

// Directory returns the office directory (nil without ldap.url).
func (b *Box) Directory() *directory.Directory { return b.directory }
