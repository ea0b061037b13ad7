package server

import (
	"bytes"
	"fmt"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
)

// otherKeyOp names an operation of r that kine's bridge would run on
// another key than the one it means, or returns "" if there is none.
//
// kine serves a transaction by its shape (kine server/create.go,
// update.go, delete.go, compact.go): a compare of one key's mod revision
// and a put, a delete or a read. It takes the key from one part and
// ignores the others' keys and range ends, so that "if a's mod revision
// is 5, put b" wrote b's value to a, a delete of a range deleted its
// first key, and a failed compare answered with the compared key rather
// than the one the failure branch reads. kube-apiserver's transactions
// always name one key throughout; any other is refused (Unimplemented)
// rather than run on the wrong key. Shapes kine does not serve at all are
// left to kine, which refuses them.
func otherKeyOp(r *etcdserverpb.TxnRequest) string {
	var key []byte
	switch {
	case len(r.Compare) == 1:
		c := r.Compare[0]
		if len(c.RangeEnd) != 0 {
			return "a compare of a key range"
		}
		key = c.Key
	case len(r.Compare) == 0 && len(r.Success) > 0:
		// kine's unconditional delete: a read and a delete of one key.
		key = opKey(r.Success[0])
	default:
		return ""
	}
	for _, ops := range [2][]*etcdserverpb.RequestOp{r.Success, r.Failure} {
		for _, op := range ops {
			if op.GetRequestTxn() != nil {
				continue // kine refuses nested transactions
			}
			if k, end := opKey(op), opRangeEnd(op); !bytes.Equal(k, key) || len(end) != 0 {
				return fmt.Sprintf("%s of %q (range end %q) beside %q", opKind(op), k, end, key)
			}
		}
	}
	return ""
}

func opKey(op *etcdserverpb.RequestOp) []byte {
	switch {
	case op.GetRequestPut() != nil:
		return op.GetRequestPut().Key
	case op.GetRequestRange() != nil:
		return op.GetRequestRange().Key
	case op.GetRequestDeleteRange() != nil:
		return op.GetRequestDeleteRange().Key
	}
	return nil
}

func opRangeEnd(op *etcdserverpb.RequestOp) []byte {
	switch {
	case op.GetRequestRange() != nil:
		return op.GetRequestRange().RangeEnd
	case op.GetRequestDeleteRange() != nil:
		return op.GetRequestDeleteRange().RangeEnd
	}
	return nil
}

func opKind(op *etcdserverpb.RequestOp) string {
	switch {
	case op.GetRequestPut() != nil:
		return "a put"
	case op.GetRequestRange() != nil:
		return "a read"
	case op.GetRequestDeleteRange() != nil:
		return "a delete"
	}
	return "an operation"
}
