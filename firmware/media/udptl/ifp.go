package udptl

import (
	"fmt"
	"strconv"
)

// MsgType is an IFP's type-of-msg choice.
type MsgType uint8

const (
	T30Indicator MsgType = 0 // t30-indicator
	T30Data      MsgType = 1 // t30-data
)

func (t MsgType) String() string {
	if t == T30Data {
		return "t30-data"
	}
	return "t30-indicator"
}

// Indicator is a t30-indicator value (T.38 Table 5: 0-15 in the root, 16-22
// in the extension).
type Indicator uint8

// Indicators used by the monitor; the rest are named by String.
const (
	NoSignal    Indicator = 0
	CNG         Indicator = 1
	CED         Indicator = 2
	V21Preamble Indicator = 3
)

var indicatorNames = [...]string{"no-signal", "cng", "ced", "v21-preamble", "v27-2400-training",
	"v27-4800-training", "v29-7200-training", "v29-9600-training", "v17-7200-short-training",
	"v17-7200-long-training", "v17-9600-short-training", "v17-9600-long-training",
	"v17-12000-short-training", "v17-12000-long-training", "v17-14400-short-training",
	"v17-14400-long-training", "v8-ansam", "v8-signal", "v34-cntl-channel-1200", "v34-pri-channel",
	"v34-CC-retrain", "v33-12000-training", "v33-14400-training"}

func (i Indicator) String() string { return name(indicatorNames[:], int(i), "indicator") }

// DataType is a t30-data value: the modulation of the data (0-8 in the root,
// 9-14 in the extension). V21 carries T.30 control messages; the others
// carry page data (or, at V.34/V.8, negotiation).
type DataType uint8

const V21 DataType = 0

var dataNames = [...]string{"v21", "v27-2400", "v27-4800", "v29-7200", "v29-9600", "v17-7200",
	"v17-9600", "v17-12000", "v17-14400", "v8", "v34-pri-rate", "v34-CC-1200", "v34-pri-ch",
	"v33-12000", "v33-14400"}

func (d DataType) String() string { return name(dataNames[:], int(d), "data") }

// FieldType is a Data-Field item's field-type.
type FieldType uint8

const (
	HDLCData        FieldType = 0 // hdlc-data
	HDLCSigEnd      FieldType = 1 // hdlc-sig-end
	HDLCFCSOK       FieldType = 2 // hdlc-fcs-OK
	HDLCFCSBad      FieldType = 3 // hdlc-fcs-BAD
	HDLCFCSOKSigEnd FieldType = 4 // hdlc-fcs-OK-sig-end
	HDLCFCSBadSig   FieldType = 5 // hdlc-fcs-BAD-sig-end
	T4NonECMData    FieldType = 6 // t4-non-ecm-data
	T4NonECMSigEnd  FieldType = 7 // t4-non-ecm-sig-end
)

var fieldNames = [...]string{"hdlc-data", "hdlc-sig-end", "hdlc-fcs-OK", "hdlc-fcs-BAD",
	"hdlc-fcs-OK-sig-end", "hdlc-fcs-BAD-sig-end", "t4-non-ecm-data", "t4-non-ecm-sig-end",
	"cm-message", "jm-message", "ci-message", "v34rate"}

func (f FieldType) String() string { return name(fieldNames[:], int(f), "field") }

// FCSBad reports whether the field ends an HDLC frame whose FCS was bad.
func (f FieldType) FCSBad() bool { return f == HDLCFCSBad || f == HDLCFCSBadSig }

func name(names []string, i int, kind string) string {
	if i < len(names) {
		return names[i]
	}
	return kind + "(" + strconv.Itoa(i) + ")"
}

// Field is one Data-Field item. Data is nil when field-data is absent; it
// points into the datagram given to Parse.
type Field struct {
	Type FieldType
	Data []byte
}

// IFP is one T.38 IFP packet.
type IFP struct {
	Type      MsgType
	Indicator Indicator // when Type is T30Indicator
	Data      DataType  // when Type is T30Data
	// HasDataField: the optional data-field is present (possibly with no
	// items).
	HasDataField bool

	fields [MaxFields]Field
	n      int
}

// Fields returns the IFP's Data-Field items.
func (f *IFP) Fields() []Field { return f.fields[:f.n] }

// PageData reports whether the IFP carries image data: t30-data at a
// modulation other than V.21.
func (f *IFP) PageData() bool { return f.Type == T30Data && f.Data != V21 }

// FCSBad counts the IFP's fields reporting an HDLC frame with a bad FCS.
func (f *IFP) FCSBad() int {
	n := 0
	for _, x := range f.fields[:f.n] {
		if x.Type.FCSBad() {
			n++
		}
	}
	return n
}

// parseIFP decodes one IFPPacket (the contents of an open type):
//
//	IFPPacket ::= SEQUENCE { type-of-msg Type-of-msg, data-field Data-Field OPTIONAL }
//	Type-of-msg ::= CHOICE { t30-indicator ENUMERATED {..., ...}, t30-data ENUMERATED {..., ...} }
//	Data-Field ::= SEQUENCE OF SEQUENCE { field-type ENUMERATED {...}, field-data OCTET STRING (SIZE(1..65535)) OPTIONAL }
func parseIFP(b []byte, v Version, f *IFP) error {
	f.n = 0
	r := reader{b: b}
	var err error
	if f.HasDataField, err = r.bit(); err != nil {
		return err
	}
	data, err := r.bit()
	if err != nil {
		return err
	}
	if !data {
		f.Type, f.Data = T30Indicator, 0
		x, err := r.enumerated(16, true)
		if err != nil {
			return fmt.Errorf("t30-indicator: %w", err)
		}
		f.Indicator = Indicator(x)
	} else {
		f.Type, f.Indicator = T30Data, 0
		x, err := r.enumerated(9, true)
		if err != nil {
			return fmt.Errorf("t30-data: %w", err)
		}
		f.Data = DataType(x)
	}
	if f.HasDataField {
		if err := f.parseFields(&r, v); err != nil {
			return err
		}
	}
	if r.align(); r.pos != 8*len(b) {
		return fmt.Errorf("%w: IFP uses %d of %d octets", ErrTrailing, r.pos/8, len(b))
	}
	return nil
}

func (f *IFP) parseFields(r *reader, v Version) error {
	n, err := r.length()
	if err != nil {
		return fmt.Errorf("data-field count: %w", err)
	}
	if n > MaxFields {
		return fmt.Errorf("%w: %d data fields (at most %d)", ErrTooMany, n, MaxFields)
	}
	for i := 0; i < n; i++ {
		present, err := r.bit()
		if err != nil {
			return fmt.Errorf("data field %d: %w", i, err)
		}
		var t int
		if v == 0 {
			t, err = r.enumerated(8, false)
		} else {
			t, err = r.enumerated(8, true)
		}
		if err != nil {
			return fmt.Errorf("data field %d field-type: %w", i, err)
		}
		fd := &f.fields[i]
		fd.Type, fd.Data = FieldType(t), nil
		if present {
			r.align()
			l, err := r.bits(16)
			if err != nil {
				return fmt.Errorf("data field %d length: %w", i, err)
			}
			if fd.Data, err = r.octets(l + 1); err != nil {
				return fmt.Errorf("data field %d: %w", i, err)
			}
		}
		f.n = i + 1
	}
	return nil
}
