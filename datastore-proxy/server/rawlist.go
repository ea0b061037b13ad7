package server

import (
	"context"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"

	"kplex.dev/datastore-proxy/tenantbackend"
)

// listRaw serves a list whose answer kine's bridge would build from the
// same store reads, as the backend's encoded answer with the tenant's keys
// (tenantbackend.Backend.ListRaw). ok is false for every other request, and
// on backends that cannot: then the bridge serves it.
//
// What the bridge does, listRaw does alike: it takes the range the same way
// ("\x00" to "\x00" is every key), and its answer has the same keys,
// values, count, more and header revision (etcd's Range with the limit
// asked, where kine reads one more key than the limit and counts apart).
// Requests the bridge refuses (sorting, revision filters, serializable) and
// ranges holding the key kine keeps the compaction revision under, whose
// answer the bridge rewrites, go to the bridge.
func listRaw(ctx context.Context, tb *tenantbackend.Backend, r *etcdserverpb.RangeRequest) (resp *etcdserverpb.RangeResponse, ok bool, err error) {
	if len(r.RangeEnd) == 0 || !plainRange(r) {
		return nil, false, nil
	}
	key, end := tenantRange(r.Key, r.RangeEnd)
	if holdsCompactKey(key, end) {
		return nil, false, nil
	}
	raw, ok, err := tb.ListRaw(ctx, key, end, r.Limit, r.Revision, r.KeysOnly, r.CountOnly)
	if !ok || err != nil {
		return nil, ok, err
	}
	return encodedRange(raw), true, nil // sent as it is: the fields are encoded already
}

// plainRange reports whether r asks for none of what kine's bridge refuses.
func plainRange(r *etcdserverpb.RangeRequest) bool {
	return r.SortOrder == 0 && r.SortTarget == 0 && !r.Serializable &&
		r.MinModRevision == 0 && r.MaxModRevision == 0 &&
		r.MinCreateRevision == 0 && r.MaxCreateRevision == 0
}

// holdsCompactKey reports whether the tenant range [key, end), in
// keyspace.Space.Range's spelling, holds kine's compaction key.
func holdsCompactKey(key, end string) bool {
	switch {
	case key == "" && end == "":
		return true
	case end == "\x00":
		return key <= compactRevAPI
	default:
		return key <= compactRevAPI && compactRevAPI < end
	}
}

// Codec is the proxy server's gRPC codec: gRPC's proto codec, except that a
// response that is only encoded bytes (listRaw's), alone or as a
// RangeStream's chunk, is sent as those bytes. The proto codec would copy
// them into a pooled buffer, which gRPC clears whole first: 1 MiB for a
// 100 KiB list. The bytes sent are the same either way, since a message
// with no fields but unknown ones encodes as exactly those.
type Codec struct{}

var protoCodec = encoding.GetCodecV2(grpcproto.Name)

// rangeStreamField is RangeStreamResponse's range_response field.
const rangeStreamField protowire.Number = 1

// Marshal encodes v.
func (Codec) Marshal(v any) (mem.BufferSlice, error) {
	switch r := v.(type) {
	case *etcdserverpb.RangeResponse:
		if raw := rawOnly(r); len(raw) > 0 {
			return mem.BufferSlice{mem.SliceBuffer(raw)}, nil
		}
	case *etcdserverpb.RangeStreamResponse:
		if raw := rawOnly(r.RangeResponse); len(raw) > 0 && len(r.ProtoReflect().GetUnknown()) == 0 {
			head := protowire.AppendTag(nil, rangeStreamField, protowire.BytesType)
			head = protowire.AppendVarint(head, uint64(len(raw)))
			return mem.BufferSlice{mem.SliceBuffer(head), mem.SliceBuffer(raw)}, nil
		}
	}
	return protoCodec.Marshal(v)
}

// encodedRange is a RangeResponse that is b, already encoded (Codec sends
// it as it is).
func encodedRange(b []byte) *etcdserverpb.RangeResponse {
	r := &etcdserverpb.RangeResponse{}
	r.ProtoReflect().SetUnknown(protoreflect.RawFields(b))
	return r
}

// rawOnly is r's encoded bytes when r holds nothing else, or nil.
func rawOnly(r *etcdserverpb.RangeResponse) []byte {
	if r == nil || r.Header != nil || r.Kvs != nil || r.More || r.Count != 0 {
		return nil
	}
	return r.ProtoReflect().GetUnknown()
}

// Unmarshal decodes data into v.
func (Codec) Unmarshal(data mem.BufferSlice, v any) error { return protoCodec.Unmarshal(data, v) }

// Name is the proto codec's: clients see plain proto.
func (Codec) Name() string { return grpcproto.Name }
