// Package capture watches Asterisk's media passively: an AF_PACKET socket
// (SOCK_DGRAM, no cgo; it needs CAP_NET_RAW) with a classic BPF program in
// the kernel that passes only UDP datagrams whose source or destination
// port lies in the box's RTP or UDPTL port range (udptl.conf, rtp.conf),
// so Asterisk's sockets are untouched and nothing else reaches faxbox.
//
// The box's SIP port passes too (SIP over UDP): a Monitor reads only the
// Call-ID and the SDP of its messages (ScanSDP): which audio and T.38
// streams each end declared in one dialog, and each T.38 stream's
// T38FaxMaxDatagram (Monitor.DialogOf, Monitor.T38Offer), in a bounded
// table of the 256 dialogs seen last.
//
// A Monitor splits the datagrams into flows (one direction of an address
// pair) and keeps per-flow statistics: UDPTL with package udptl, RTP with
// package rtpstat. Its memory is bounded: a fixed table of flows (a new
// flow replaces a flood's flow: no valid datagram, or one and silence;
// with the table full of live streams it is refused and counted), fixed
// state per flow, and a token-bucket rate limit (a flood on the port
// ranges is counted, not parsed). The kernel queues at most the socket
// buffer; what it drops is counted (Stats.KernelDrops). Every drop is also
// dated to its second (Monitor.DroppedBetween, in a bounded log), so a fax
// attempt's report can say the capture of its call was incomplete. On loopback the socket sees each datagram
// twice (leaving and arriving): the leaving copy is skipped.
//
// Which flow belongs to which fax attempt is package media's business.
// ReadPcap and PcapWriter read and write classic pcap files (for tshark,
// and the tests' captures of real lab faxes).
package capture
