// Package rangewire turns an etcd RangeResponse, as the shared etcd encodes
// it, into the response a tenant gets, without decoding it into messages.
//
// A list is the proxy's largest answer: a hundred objects of a kilobyte
// each is a hundred kilobytes, and decoding it into a hundred KeyValues and
// encoding them again cost most of the proxy's CPU per list. Here the
// response is walked once at the wire level: each key loses the tenant's
// prefix, the header keeps only the revision (as kine's answers do: the
// shared store's cluster and member IDs are not the tenant's business), and
// a lease reads as the TTL its ID stands for (leaseid: the ID is shared
// with other tenants' keys), and every other byte (values, revisions,
// count, more) is copied as it is.
// A RangeStream's pages are taken apart and put together the same way
// (page.go).
package rangewire

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"

	"kplex.dev/datastore-proxy/leaseid"
)

// Field numbers of etcdserverpb.RangeResponse, ResponseHeader and
// mvccpb.KeyValue (etcd's rpc.proto and kv.proto).
const (
	rangeHeader    protowire.Number = 1
	rangeKvs       protowire.Number = 2
	headerRevision protowire.Number = 3
	kvKey          protowire.Number = 1
	kvLease        protowire.Number = 6
)

// ErrForeignKey is returned for a response holding a key outside the
// tenant's prefix: the range asked for was the tenant's, so the store
// answered something else, and nothing of it may reach the tenant.
var ErrForeignKey = errors.New("rangewire: a key outside the tenant's space")

var errNotAKey = errors.New("a KeyValue without exactly one key")

// Own rewrites raw, an encoded RangeResponse of stored keys, into the
// tenant's response: every key has prefix removed, every lease is its TTL
// (leaseid.TTL), the header only its revision. It works in place: the result shares raw's memory, and raw is
// overwritten. (In place is safe because no part of the output is longer
// than the input it comes from (a lease's TTL is at most its ID), so
// writing never overtakes reading; the
// fuzz test checks the result against a decode, strip and encode.)
func Own(raw []byte, prefix string) ([]byte, error) {
	out := raw[:0]
	for rest := raw; len(rest) > 0; {
		num, typ, n := protowire.ConsumeTag(rest)
		if n < 0 {
			return nil, fmt.Errorf("rangewire: response: %w", protowire.ParseError(n))
		}
		m := protowire.ConsumeFieldValue(num, typ, rest[n:])
		if m < 0 {
			return nil, fmt.Errorf("rangewire: response field %d: %w", num, protowire.ParseError(m))
		}
		field := rest[:n+m]
		rest = rest[n+m:]
		if typ != protowire.BytesType || (num != rangeHeader && num != rangeKvs) {
			out = append(out, field...)
			continue
		}
		body, _ := protowire.ConsumeBytes(field[n:])
		var err error
		if num == rangeHeader {
			out, err = appendHeader(out, body)
		} else {
			out, err = appendKV(out, body, prefix)
		}
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// appendHeader appends a header holding only the revision of header.
func appendHeader(out, header []byte) ([]byte, error) {
	var rev uint64
	err := eachField(header, func(num protowire.Number, typ protowire.Type, _, value []byte) error {
		if num == headerRevision && typ == protowire.VarintType {
			rev, _ = protowire.ConsumeVarint(value)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("rangewire: header: %w", err)
	}
	size := 0
	if rev != 0 {
		size = protowire.SizeTag(headerRevision) + protowire.SizeVarint(rev)
	}
	out = protowire.AppendTag(out, rangeHeader, protowire.BytesType)
	out = protowire.AppendVarint(out, uint64(size))
	if rev != 0 {
		out = protowire.AppendTag(out, headerRevision, protowire.VarintType)
		out = protowire.AppendVarint(out, rev)
	}
	return out, nil
}

// appendKV appends the KeyValue kv with prefix taken off its key.
func appendKV(out, kv []byte, prefix string) ([]byte, error) {
	// First the new size, which the KeyValue's length prefix needs.
	size, keys := 0, 0
	err := eachField(kv, func(num protowire.Number, typ protowire.Type, field, value []byte) error {
		if lease, ok := leaseField(num, typ, value); ok {
			size += protowire.SizeTag(kvLease) + protowire.SizeVarint(lease)
			return nil
		}
		if num != kvKey {
			size += len(field)
			return nil
		}
		keys++
		key, n := protowire.ConsumeBytes(value)
		if typ != protowire.BytesType || n < 0 {
			return errNotAKey
		}
		if len(key) < len(prefix) || string(key[:len(prefix)]) != prefix {
			return ErrForeignKey
		}
		size += protowire.SizeTag(kvKey) + protowire.SizeBytes(len(key)-len(prefix))
		return nil
	})
	if err == nil && keys != 1 {
		err = errNotAKey // etcd sends every KeyValue with its key, once
	}
	if err != nil {
		return nil, fmt.Errorf("rangewire: kv: %w", err)
	}
	out = protowire.AppendTag(out, rangeKvs, protowire.BytesType)
	out = protowire.AppendVarint(out, uint64(size))
	// eachField cannot fail now: it walked the same bytes above.
	_ = eachField(kv, func(num protowire.Number, typ protowire.Type, field, value []byte) error {
		if lease, ok := leaseField(num, typ, value); ok {
			out = protowire.AppendTag(out, kvLease, protowire.VarintType)
			out = protowire.AppendVarint(out, lease)
			return nil
		}
		if num != kvKey {
			out = append(out, field...)
			return nil
		}
		key, _ := protowire.ConsumeBytes(value)
		out = protowire.AppendTag(out, kvKey, protowire.BytesType)
		out = protowire.AppendBytes(out, key[len(prefix):])
		return nil
	})
	return out, nil
}

// leaseField returns the TTL of a KeyValue's lease field (num, typ, value),
// and whether it is one.
func leaseField(num protowire.Number, typ protowire.Type, value []byte) (uint64, bool) {
	if num != kvLease || typ != protowire.VarintType {
		return 0, false
	}
	id, _ := protowire.ConsumeVarint(value)
	return uint64(leaseid.TTL(int64(id))), true
}

// eachField calls f with each field of the message msg: its number, wire
// type, whole encoding and value (after the tag).
func eachField(msg []byte, f func(num protowire.Number, typ protowire.Type, field, value []byte) error) error {
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			return protowire.ParseError(n)
		}
		m := protowire.ConsumeFieldValue(num, typ, msg[n:])
		if m < 0 {
			return protowire.ParseError(m)
		}
		if err := f(num, typ, msg[:n+m], msg[n:n+m]); err != nil {
			return err
		}
		msg = msg[n+m:]
	}
	return nil
}
