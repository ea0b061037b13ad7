package etcdbackend

import (
	"context"
	"fmt"
	"math"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
)

// ListRaw reads [key, end) at revision (0: latest) as etcd's Range does,
// with its limit, count and more, and returns etcd's encoded
// RangeResponse, undecoded (tenantbackend.RawLister). Like List it goes to
// etcd alone, not in a batch.
func (b *Backend) ListRaw(ctx context.Context, key, end string, limit, revision int64, keysOnly, countOnly bool) ([]byte, error) {
	resp, err := b.kv.Range(ctx, &etcdserverpb.RangeRequest{
		Key: []byte(key), RangeEnd: []byte(end), Limit: limit, Revision: revision,
		KeysOnly: keysOnly, CountOnly: countOnly,
	}, grpc.ForceCodecV2(undecodedRange{}),
		// What etcd's KV client adds to each call, which this one, made
		// below it, would go without: gRPC's default limit took answers
		// of 4 MiB at most, and etcd sends up to 2 GiB.
		grpc.MaxCallRecvMsgSize(math.MaxInt32), grpc.WaitForReady(true))
	if err != nil {
		return nil, mapErr(err)
	}
	return resp.ProtoReflect().GetUnknown(), nil
}

// undecodedRange is gRPC's proto codec, except that it does not decode a
// RangeResponse: it keeps the whole encoding as the message's unknown
// fields, for the caller to take as it is.
type undecodedRange struct{}

var protoCodec = encoding.GetCodecV2(proto.Name)

func (undecodedRange) Marshal(v any) (mem.BufferSlice, error) { return protoCodec.Marshal(v) }

func (undecodedRange) Unmarshal(data mem.BufferSlice, v any) error {
	r, ok := v.(*etcdserverpb.RangeResponse)
	if !ok {
		return fmt.Errorf("etcdbackend: undecoded reply of type %T, want a RangeResponse", v)
	}
	r.Reset()
	r.ProtoReflect().SetUnknown(data.Materialize()) // a copy: gRPC reuses data
	return nil
}

// Name is the codec's content subtype: etcd sees plain proto.
func (undecodedRange) Name() string { return proto.Name }
