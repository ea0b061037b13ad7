package server

import (
	"fmt"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// RangeResponse's fields (etcd api/etcdserverpb/rpc.proto), and the
// fields of those that a page needs.
const (
	rangeHeaderField protowire.Number = 1
	rangeKvsField    protowire.Number = 2
	rangeMoreField   protowire.Number = 3
	rangeCountField  protowire.Number = 4
	headerRevField   protowire.Number = 3 // ResponseHeader.revision
	kvKeyField       protowire.Number = 1 // mvccpb.KeyValue.key
)

// page is one Range answer in its encoding, taken apart for a RangeStream:
// its keys pass on as the encoded fields they are.
type page struct {
	header []byte // the header field, tag included (nil: none)
	kvs    []byte // the kvs fields, tags included, in order
	n      int    // how many kvs
	last   []byte // the last kv's key
	more   bool
	count  int64
}

// parsePage takes apart raw, a RangeResponse's encoding. The kvs stay a
// slice of raw when they are one run of fields, as every encoder writes
// them (in field order).
func parsePage(raw []byte) (page, error) {
	var p page
	kvStart, kvEnd, copied := 0, 0, false
	for i := 0; i < len(raw); {
		num, typ, n := protowire.ConsumeTag(raw[i:])
		if n < 0 {
			return page{}, fmt.Errorf("range response: %w", protowire.ParseError(n))
		}
		m := protowire.ConsumeFieldValue(num, typ, raw[i+n:])
		if m < 0 {
			return page{}, fmt.Errorf("range response field %d: %w", num, protowire.ParseError(m))
		}
		field, value := raw[i:i+n+m], raw[i+n:i+n+m]
		switch {
		case num == rangeHeaderField && typ == protowire.BytesType:
			p.header = field
		case num == rangeKvsField && typ == protowire.BytesType:
			switch {
			case p.n == 0:
				kvStart, kvEnd = i, i+n+m
				p.kvs = raw[kvStart:kvEnd]
			case !copied && i == kvEnd:
				kvEnd = i + n + m
				p.kvs = raw[kvStart:kvEnd]
			default:
				if !copied {
					p.kvs, copied = append([]byte(nil), p.kvs...), true
				}
				p.kvs = append(p.kvs, field...)
			}
			kv, _ := protowire.ConsumeBytes(value)
			p.last = bytesField(kv, kvKeyField)
			p.n++
		case num == rangeMoreField && typ == protowire.VarintType:
			v, _ := protowire.ConsumeVarint(value)
			p.more = v != 0
		case num == rangeCountField && typ == protowire.VarintType:
			v, _ := protowire.ConsumeVarint(value)
			p.count = int64(v)
		}
		i += n + m
	}
	return p, nil
}

// headerRevision is the revision in a header field (parsePage's header).
func headerRevision(header []byte) int64 {
	_, _, n := protowire.ConsumeTag(header)
	if n < 0 {
		return 0
	}
	msg, m := protowire.ConsumeBytes(header[n:])
	if m < 0 {
		return 0
	}
	for i := 0; i < len(msg); {
		num, typ, n := protowire.ConsumeTag(msg[i:])
		if n < 0 {
			return 0
		}
		if num == headerRevField && typ == protowire.VarintType {
			v, _ := protowire.ConsumeVarint(msg[i+n:])
			return int64(v)
		}
		m := protowire.ConsumeFieldValue(num, typ, msg[i+n:])
		if m < 0 {
			return 0
		}
		i += n + m
	}
	return 0
}

// bytesField is the first field num of msg, a length-delimited one.
func bytesField(msg []byte, num protowire.Number) []byte {
	for i := 0; i < len(msg); {
		got, typ, n := protowire.ConsumeTag(msg[i:])
		if n < 0 {
			return nil
		}
		m := protowire.ConsumeFieldValue(got, typ, msg[i+n:])
		if m < 0 {
			return nil
		}
		if got == num && typ == protowire.BytesType {
			v, _ := protowire.ConsumeBytes(msg[i+n:])
			return v
		}
		i += n + m
	}
	return nil
}

// finalChunk is the last chunk of a RangeStream: the header, the last
// page's kvs, more and count, encoded.
func finalChunk(header, kvs []byte, more bool, count int64) *etcdserverpb.RangeResponse {
	b := make([]byte, 0, len(header)+len(kvs)+2*(1+protowire.SizeVarint(uint64(count))))
	b = append(append(b, header...), kvs...)
	if more {
		b = protowire.AppendVarint(protowire.AppendTag(b, rangeMoreField, protowire.VarintType), 1)
	}
	if count != 0 {
		b = protowire.AppendVarint(protowire.AppendTag(b, rangeCountField, protowire.VarintType), uint64(count))
	}
	return encodedRange(b)
}

// encodedRange is a RangeResponse that is b, already encoded (Codec sends
// it as it is).
func encodedRange(b []byte) *etcdserverpb.RangeResponse {
	r := &etcdserverpb.RangeResponse{}
	r.ProtoReflect().SetUnknown(protoreflect.RawFields(b))
	return r
}
