package job

// MediaReport is what the box's passive media monitor saw of one fax
// attempt's call: the T.38 (UDPTL) packets each way, or the G.711 audio
// (RTP) each way. Sent is from the box to the far end, Received the other
// way. A report that could not be made says why in Unavailable and has
// nothing else.
type MediaReport struct {
	// Unavailable, when set, says why there is no report (no capture
	// permission, not an IP line, no media seen).
	Unavailable string `json:"unavailable,omitempty"`
	// Transport the media showed: t38 (UDPTL packets seen) or g711.
	Transport string `json:"transport,omitempty"`
	// Tie says how the packets were tied to this attempt (see package
	// media).
	Tie string     `json:"tie,omitempty"`
	T38 *T38Report `json:"t38,omitempty"`
	RTP *RTPReport `json:"rtp,omitempty"`
	// SwitchToUDPTLMS is the time from the switch to T.38 (the call's
	// last audio packet) to its first UDPTL packet, in milliseconds.
	SwitchToUDPTLMS *int64 `json:"switch_to_udptl_ms,omitempty"`
	// CaptureIncomplete: the capture missed packets while the call was up
	// (a flood over its rate limit, the kernel's drops, or new flows
	// refused while its table was full), CaptureDropped of them: the
	// figures may show loss the path did not have, so the box learns no
	// lossy path and no trunk alarm from this report.
	CaptureIncomplete bool   `json:"capture_incomplete,omitempty"`
	CaptureDropped    uint64 `json:"capture_dropped,omitempty"`
}

// T38Report is a T.38 call's UDPTL streams, one per direction.
type T38Report struct {
	Sent     UDPTLDirection `json:"sent"`
	Received UDPTLDirection `json:"received"`
}

// UDPTLDirection is one direction of a UDPTL stream.
type UDPTLDirection struct {
	From    string `json:"from"` // address:port
	To      string `json:"to"`
	Packets int    `json:"packets"` // datagrams that parsed (duplicates included)
	// Malformed: datagrams that did not parse as UDPTL.
	Malformed int `json:"malformed"`
	// Gaps: sequence numbers never received as a primary IFP; Recovered of
	// them came back from later packets' redundancy or FEC, Unrecoverable
	// did not.
	Gaps          int `json:"gaps"`
	Recovered     int `json:"recovered"`
	Unrecoverable int `json:"unrecoverable"`
	// LongestBurst: the longest run of consecutive gaps; compare with
	// RedundancyDepth (the most secondary IFPs one datagram carried).
	LongestBurst    int `json:"longest_burst"`
	RedundancyDepth int `json:"redundancy_depth"`
	// LargestDatagram: the longest UDPTL payload, in octets.
	LargestDatagram int `json:"largest_datagram"`
	// MaxDatagram: the negotiated T38FaxMaxDatagram of this direction,
	// the one the receiving end declared in its SDP (0: no SDP seen, e.g.
	// SIP over TLS). OverMaxDatagram: LargestDatagram is larger, so the
	// receiver may have dropped such datagrams.
	MaxDatagram     int  `json:"max_datagram,omitempty"`
	OverMaxDatagram bool `json:"over_max_datagram,omitempty"`
	// PageJitterMS: the interarrival jitter of page-data IFPs (RFC 3550
	// smoothing), in milliseconds.
	PageJitterMS float64 `json:"page_jitter_ms"`
	// FCSBad: HDLC frames the sender marked with a bad FCS.
	FCSBad int `json:"fcs_bad"`
}

// RTPReport is a G.711 call's RTP streams, one per direction.
type RTPReport struct {
	Sent     RTPDirection `json:"sent"`
	Received RTPDirection `json:"received"`
}

// RTPDirection is one direction of an RTP stream (all its sources).
type RTPDirection struct {
	From     string  `json:"from"`
	To       string  `json:"to"`
	Packets  int     `json:"packets"`
	Expected int     `json:"expected"`
	Lost     int     `json:"lost"`
	LossPct  float64 `json:"loss_pct"`
	JitterMS float64 `json:"jitter_ms"` // RFC 3550 interarrival jitter at the end
	// MaxJitterMS: the highest the jitter reached.
	MaxJitterMS float64 `json:"max_jitter_ms"`
	Resets      int     `json:"resets"` // sequence restarts
}
