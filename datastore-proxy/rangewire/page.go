package rangewire

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// RangeResponse's more and count fields.
const (
	rangeMore  protowire.Number = 3
	rangeCount protowire.Number = 4
)

// Page is one encoded RangeResponse taken apart, so that its keys can pass
// on as the encoded fields they are: a RangeStream sends a list as chunks
// of such pages.
type Page struct {
	Header []byte // the header field, tag included (nil: none)
	Kvs    []byte // the kvs fields, tags included, in order
	N      int    // how many kvs
	Last   []byte // the last kv's key (a slice of the encoding)
	More   bool
	Count  int64
}

// Split takes raw, an encoded RangeResponse, apart. Kvs stays a slice of
// raw when the kvs fields are one run, as every encoder writes them (in
// field order); otherwise it is a copy.
func Split(raw []byte) (Page, error) {
	var p Page
	kvStart, kvEnd, copied := 0, 0, false
	pos := 0
	err := eachField(raw, func(num protowire.Number, typ protowire.Type, field, value []byte) error {
		at := pos
		pos += len(field)
		switch {
		case num == rangeHeader && typ == protowire.BytesType:
			p.Header = field
		case num == rangeKvs && typ == protowire.BytesType:
			switch {
			case p.N == 0:
				kvStart, kvEnd = at, pos
				p.Kvs = raw[kvStart:kvEnd]
			case !copied && at == kvEnd:
				kvEnd = pos
				p.Kvs = raw[kvStart:kvEnd]
			default:
				if !copied {
					p.Kvs, copied = append([]byte(nil), p.Kvs...), true
				}
				p.Kvs = append(p.Kvs, field...)
			}
			kv, _ := protowire.ConsumeBytes(value)
			p.Last = bytesField(kv, kvKey)
			p.N++
		case num == rangeMore && typ == protowire.VarintType:
			v, _ := protowire.ConsumeVarint(value)
			p.More = v != 0
		case num == rangeCount && typ == protowire.VarintType:
			v, _ := protowire.ConsumeVarint(value)
			p.Count = int64(v)
		}
		return nil
	})
	if err != nil {
		return Page{}, fmt.Errorf("rangewire: response: %w", err)
	}
	return p, nil
}

// Revision is the revision in p's header (0: none).
func (p Page) Revision() int64 {
	var rev int64
	header, _ := protowire.ConsumeBytes(p.Header[min(len(p.Header), protowire.SizeTag(rangeHeader)):])
	_ = eachField(header, func(num protowire.Number, typ protowire.Type, _, value []byte) error {
		if num == headerRevision && typ == protowire.VarintType {
			v, _ := protowire.ConsumeVarint(value)
			rev = int64(v)
		}
		return nil
	})
	return rev
}

// Final encodes the last chunk of a list: header (a Page's), the kvs
// fields kvs, more and count.
func Final(header, kvs []byte, more bool, count int64) []byte {
	b := make([]byte, 0, len(header)+len(kvs)+2*(1+protowire.SizeVarint(uint64(count))))
	b = append(append(b, header...), kvs...)
	if more {
		b = protowire.AppendVarint(protowire.AppendTag(b, rangeMore, protowire.VarintType), 1)
	}
	if count != 0 {
		b = protowire.AppendVarint(protowire.AppendTag(b, rangeCount, protowire.VarintType), uint64(count))
	}
	return b
}

// bytesField is the first length-delimited field num of msg (nil: none).
func bytesField(msg []byte, num protowire.Number) []byte {
	var out []byte
	_ = eachField(msg, func(got protowire.Number, typ protowire.Type, _, value []byte) error {
		if out == nil && got == num && typ == protowire.BytesType {
			out, _ = protowire.ConsumeBytes(value)
		}
		return nil
	})
	return out
}
