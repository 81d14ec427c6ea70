package config

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
)

// IPP configures the IPP FaxOut service (print to fax, PWG 5100.15) served
// at /ipp/faxout on the API's listener, and on Listen when it is set.
type IPP struct {
	// Enabled serves /ipp/faxout.
	Enabled bool `json:"enabled"`
	// Listen is a further address (":631", the IPP port) that serves only
	// the IPP service; "" serves it on the API's listener alone.
	Listen string `json:"listen"`
	// AllowIPs may print without credentials (addresses or CIDRs); other
	// clients authenticate with HTTP Basic, an API token as the password.
	AllowIPs []string `json:"allow_ips"`
	// Name and Location are what print dialogs show for the fax printer.
	Name     string `json:"name"`
	Location string `json:"location"`
	// DNSSDDir is avahi-daemon's static service directory: when it exists
	// the printer is announced over DNS-SD by a service file written there
	// while the box serves (avahi reloads the directory by itself). ""
	// announces nothing.
	DNSSDDir string `json:"dnssd_dir"`
}

// defaultIPP is the IPP service of a box without ipp settings: on, loopback
// clients without credentials.
func defaultIPP() IPP {
	return IPP{Enabled: true, AllowIPs: []string{"127.0.0.1/32", "::1/128"}, Name: "faxbox",
		DNSSDDir: "/etc/avahi/services"}
}

// validate reports the problems of the ipp section (nil when none).
func (i IPP) validate() error {
	var errs []error
	for _, a := range i.AllowIPs {
		if _, _, err := net.ParseCIDR(a); err != nil && net.ParseIP(a) == nil {
			errs = append(errs, fmt.Errorf("ipp.allow_ips: %q is neither an address nor a CIDR", a))
		}
	}
	if i.Listen != "" {
		if _, _, err := net.SplitHostPort(i.Listen); err != nil {
			errs = append(errs, fmt.Errorf("ipp.listen %q: host:port (\":631\"): %w", i.Listen, err))
		}
	}
	if len(i.Name) > 127 || strings.ContainsAny(i.Name+i.Location, "\x00\r\n") || len(i.Location) > 127 {
		errs = append(errs, errors.New("ipp.name and ipp.location: at most 127 bytes, one line each"))
	}
	if i.DNSSDDir != "" && (!filepath.IsAbs(i.DNSSDDir) || strings.ContainsAny(i.DNSSDDir, "\x00\r\n")) {
		errs = append(errs, fmt.Errorf("ipp.dnssd_dir %q: an absolute directory path, or \"\" for no DNS-SD announcement", i.DNSSDDir))
	}
	return errors.Join(errs...)
}
