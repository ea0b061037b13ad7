package server

import (
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

func TestIsWrite(t *testing.T) {
	rng := &pb.RequestOp{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte("/a")}}}
	put := &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("/a")}}}
	del := &pb.RequestOp{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: &pb.DeleteRangeRequest{Key: []byte("/a")}}}
	nested := func(r *pb.TxnRequest) *pb.RequestOp {
		return &pb.RequestOp{Request: &pb.RequestOp_RequestTxn{RequestTxn: r}}
	}
	cmp := []*pb.Compare{{Key: []byte("/a"), Target: pb.Compare_MOD}}
	for _, tc := range []struct {
		name   string
		method string
		req    any
		want   bool
	}{
		{"put", "/etcdserverpb.KV/Put", &pb.PutRequest{}, true},
		{"delete", "/etcdserverpb.KV/DeleteRange", &pb.DeleteRangeRequest{}, true},
		{"compact", "/etcdserverpb.KV/Compact", &pb.CompactionRequest{}, true},
		{"range", "/etcdserverpb.KV/Range", &pb.RangeRequest{}, false},
		{"lease grant", "/etcdserverpb.Lease/LeaseGrant", &pb.LeaseGrantRequest{}, false},
		{"txn of compares and ranges", "/etcdserverpb.KV/Txn", &pb.TxnRequest{Compare: cmp, Success: []*pb.RequestOp{rng}, Failure: []*pb.RequestOp{rng}}, false},
		{"empty txn", "/etcdserverpb.KV/Txn", &pb.TxnRequest{}, false},
		{"txn with a put", "/etcdserverpb.KV/Txn", &pb.TxnRequest{Compare: cmp, Success: []*pb.RequestOp{put}, Failure: []*pb.RequestOp{rng}}, true},
		{"txn with a delete on failure", "/etcdserverpb.KV/Txn", &pb.TxnRequest{Success: []*pb.RequestOp{rng}, Failure: []*pb.RequestOp{del}}, true},
		{"txn with a nested put", "/etcdserverpb.KV/Txn", &pb.TxnRequest{Success: []*pb.RequestOp{rng, nested(&pb.TxnRequest{Failure: []*pb.RequestOp{put}})}}, true},
		{"txn with a nested read", "/etcdserverpb.KV/Txn", &pb.TxnRequest{Success: []*pb.RequestOp{nested(&pb.TxnRequest{Success: []*pb.RequestOp{rng}})}}, false},
		{"txn of another type", "/etcdserverpb.KV/Txn", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := isWrite(tc.method, tc.req); got != tc.want {
				t.Errorf("isWrite(%s) = %v, want %v", tc.method, got, tc.want)
			}
		})
	}
}

// hasEmptyKey and findPut look into nested transactions, compares too.
func TestTxnWalks(t *testing.T) {
	put := func(key string, ignore bool) *pb.RequestOp {
		return &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte(key), IgnoreValue: ignore}}}
	}
	nested := func(r *pb.TxnRequest) *pb.RequestOp {
		return &pb.RequestOp{Request: &pb.RequestOp_RequestTxn{RequestTxn: r}}
	}
	for _, tc := range []struct {
		name     string
		txn      *pb.TxnRequest
		empty    bool
		ignoring string // the key of unservedPut's find, or ""
	}{
		{"plain", &pb.TxnRequest{Compare: []*pb.Compare{{Key: []byte("/a")}}, Success: []*pb.RequestOp{put("/a", false)}}, false, ""},
		{"empty compare key", &pb.TxnRequest{Compare: []*pb.Compare{{}}}, true, ""},
		{"empty put key, failure branch", &pb.TxnRequest{Failure: []*pb.RequestOp{put("", false)}}, true, ""},
		{"empty compare key, nested", &pb.TxnRequest{Success: []*pb.RequestOp{nested(&pb.TxnRequest{Compare: []*pb.Compare{{}}})}}, true, ""},
		{"empty range key, nested twice", &pb.TxnRequest{Failure: []*pb.RequestOp{nested(&pb.TxnRequest{Success: []*pb.RequestOp{nested(&pb.TxnRequest{Success: []*pb.RequestOp{
			{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{}}}}})}})}}, true, ""},
		{"ignoring put, second", &pb.TxnRequest{Success: []*pb.RequestOp{put("/a", false), put("/b", true)}}, false, "/b"},
		{"ignoring put, nested", &pb.TxnRequest{Failure: []*pb.RequestOp{nested(&pb.TxnRequest{Success: []*pb.RequestOp{put("/c", true)}}), put("/d", true)}}, false, "/c"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := hasEmptyKey(tc.txn); got != tc.empty {
				t.Errorf("hasEmptyKey = %v, want %v", got, tc.empty)
			}
			var got string
			if p := unservedPut(tc.txn); p != nil {
				got = string(p.Key)
			}
			if got != tc.ignoring {
				t.Errorf("unservedPut found %q, want %q", got, tc.ignoring)
			}
		})
	}
}
