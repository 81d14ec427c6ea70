package udptl_test

import (
	"os"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/media/capture"
	"github.com/faxbox/faxbox/firmware/media/udptl"
)

type datagram struct {
	flow    capture.FlowKey
	payload []byte
	at      time.Time
}

// labDatagrams returns the UDPTL datagrams of the committed lab capture.
func labDatagrams(b *testing.B) []datagram {
	f, err := os.Open("../capture/testdata/lab-t38-redundancy.pcap")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	var ds []datagram
	err = capture.ReadPcap(f, func(p []byte, at time.Time) error {
		key, payload, ok := capture.UDP(p)
		if ok {
			ds = append(ds, datagram{key, append([]byte(nil), payload...), at})
		}
		return nil
	})
	if err != nil || len(ds) == 0 {
		b.Fatalf("%d datagrams: %v", len(ds), err)
	}
	return ds
}

// passes is how often one iteration goes through the lab fax's datagrams:
// enough work (about a second) that `make bench`'s -benchtime 1x measures
// a rate, not one packet.
const passes = 20000

// BenchmarkParse parses the datagrams of a real lab fax (both directions,
// T.38 with redundancy) in a loop and reports packets per second on one
// core; the target is at least 1 M/s, with no allocation. An iteration
// (op) is passes runs through the fax's datagrams.
func BenchmarkParse(b *testing.B) {
	ds := labDatagrams(b)
	var p udptl.Packet
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		for range passes {
			for k := range ds {
				if err := udptl.Parse(ds[k].payload, 0, &p); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	b.ReportMetric(float64(b.N*passes*len(ds))/b.Elapsed().Seconds(), "packets/s")
}

// BenchmarkParseAndTrack adds the Flow accounting to the parse.
func BenchmarkParseAndTrack(b *testing.B) {
	ds := labDatagrams(b)
	var p udptl.Packet
	flows := map[capture.FlowKey]*udptl.Flow{}
	for _, d := range ds {
		if flows[d.flow] == nil {
			flows[d.flow] = &udptl.Flow{}
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		for range passes {
			for k := range ds {
				d := &ds[k]
				if err := udptl.Parse(d.payload, 0, &p); err != nil {
					b.Fatal(err)
				}
				flows[d.flow].Add(&p, d.at)
			}
		}
	}
	b.ReportMetric(float64(b.N*passes*len(ds))/b.Elapsed().Seconds(), "packets/s")
}
