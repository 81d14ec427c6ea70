// Package callpolicy decides the flow of a call job's call: whether a
// caller called back by the inbound callback service gets a line out (the
// PIN, then the destination keyed in), and what the end of a click-to-call,
// message or callback call means (a stable failure code, talk seconds, the
// acknowledgement key).
//
// It is pure Go and knows nothing of AMI. The Asterisk dialler only
// translates: it turns Asterisk's events into the inputs here (Flow's
// KeyedPIN and KeyedDest, an End) and the decisions back into Asterisk
// actions (a Step becomes a Redirect, with a Setvar for Connect).
package callpolicy

import (
	"crypto/sha256"
	"crypto/subtle"

	"github.com/faxbox/faxbox/firmware/failure"
	"github.com/faxbox/faxbox/firmware/rules"
)

// MaxPINTries is how many wrong PINs a caller may key in: the one that
// reaches it ends the call.
const MaxPINTries = 3

// Step is what is done with the caller after a decision.
type Step int

// Steps of the callback flow.
const (
	// Stay: the event changes nothing; leave the caller where they are.
	Stay Step = iota
	// AskPIN prompts for the PIN (again).
	AskPIN
	// AskDest prompts for the destination.
	AskDest
	// Connect dials the destination just keyed in and bridges the caller.
	Connect
	// HangUp ends the call; Flow.Refused says why.
	HangUp
)

// String names the step (for logs and test messages).
func (s Step) String() string {
	switch s {
	case Stay:
		return "stay"
	case AskPIN:
		return "ask_pin"
	case AskDest:
		return "ask_dest"
	case Connect:
		return "connect"
	case HangUp:
		return "hang_up"
	}
	return "step(?)"
}

// Callback is what a box allows on its inbound callback.
type Callback struct {
	// PIN the caller must key in. Empty: no PIN is right, nobody gets a
	// line out.
	PIN string
	// AllowDest says whether a caller may be connected to digits (a number
	// rules.Number accepts). Nil allows nothing.
	AllowDest func(digits string) bool
}

// phase of a Flow.
type phase int

const (
	askingPIN phase = iota
	askingDest
	connected
	refused
)

// Flow is one callback call's way through the prompts: PIN, then
// destination. The zero Flow waits for the PIN. A Flow is not safe for
// concurrent use; the caller serialises its events.
type Flow struct {
	phase  phase
	tries  int // wrong PINs so far
	reason failure.Code
}

// KeyedPIN decides on a PIN the caller keyed in: the right one moves on to
// the destination prompt; a wrong one prompts again, and the MaxPINTries-th
// wrong one hangs up with failure.CallPINRejected. PINs are compared in
// constant time (of their length too). A PIN after the PIN prompt was
// passed changes nothing; after a refusal the answer stays HangUp.
func (f *Flow) KeyedPIN(cb Callback, pin string) Step {
	switch f.phase {
	case refused:
		return HangUp
	case askingDest, connected:
		return Stay
	}
	if samePIN(cb.PIN, pin) {
		f.phase = askingDest
		return AskDest
	}
	f.tries++
	if f.tries >= MaxPINTries {
		f.refuse(failure.CallPINRejected)
		return HangUp
	}
	return AskPIN
}

// KeyedDest decides on a destination the caller keyed in: a number
// (rules.Number) that cb.AllowDest allows is connected; anything else hangs
// up with failure.CallDestRefused, as does a destination before the right
// PIN. A destination after one was connected changes nothing; after a
// refusal the answer stays HangUp.
func (f *Flow) KeyedDest(cb Callback, dest string) Step {
	switch f.phase {
	case refused:
		return HangUp
	case connected:
		return Stay
	case askingPIN:
		f.refuse(failure.CallDestRefused)
		return HangUp
	}
	if rules.Number(dest) != nil || cb.AllowDest == nil || !cb.AllowDest(dest) {
		f.refuse(failure.CallDestRefused)
		return HangUp
	}
	f.phase = connected
	return Connect
}

// Refused is why the flow hung up (failure.CallPINRejected or
// failure.CallDestRefused), "" while it has not.
func (f *Flow) Refused() failure.Code { return f.reason }

// WrongPINs is how many wrong PINs were keyed in.
func (f *Flow) WrongPINs() int { return f.tries }

func (f *Flow) refuse(c failure.Code) {
	f.phase, f.reason = refused, c
}

// samePIN compares in constant time; digests hide the lengths. No
// configured PIN matches nothing.
func samePIN(want, got string) bool {
	if want == "" {
		return false
	}
	w, g := sha256.Sum256([]byte(want)), sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(w[:], g[:]) == 1
}
