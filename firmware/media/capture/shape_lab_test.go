//go:build lab

package capture

import (
	"fmt"

	"github.com/faxbox/faxbox/firmware/media/udptl"
)

// shapeOf names what kind of datagram b is (message type, data type, field
// types, recovery and depth), to keep one of each as a fuzz seed.
func shapeOf(b []byte) string {
	var p udptl.Packet
	if err := udptl.Parse(b, 0, &p); err != nil {
		return "malformed"
	}
	s := p.Primary.Type.String()
	if p.Primary.Type == udptl.T30Data {
		s += " " + p.Primary.Data.String()
	}
	for _, f := range p.Primary.Fields() {
		s += " " + f.Type.String()
	}
	return fmt.Sprintf("%s, %s %d", s, p.Recovery, len(p.Secondary())+len(p.FECData()))
}
