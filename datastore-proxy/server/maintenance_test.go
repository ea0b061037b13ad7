package server_test

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"kplex.dev/datastore-proxy/backend"
	"kplex.dev/datastore-proxy/internal/proxytest"
)

// What etcdctl's endpoint health and status ask answers as a healthy
// etcd's would (no alarms, one member, a status), and what acts on the
// shared store (alarms raised or cleared, defragment, snapshot, members)
// is refused, with PermissionDenied.
func TestMaintenanceAsATenantSeesIt(t *testing.T) {
	proxytest.ForEachBackend(t, func(t *testing.T, b backend.Config) {
		px := proxytest.Start(t, b)
		c := px.Client(t, "alpha")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		put, err := c.Put(ctx, "/registry/k", "v")
		if err != nil {
			t.Fatal(err)
		}

		alarms, err := c.AlarmList(ctx)
		if err != nil || len(alarms.Alarms) != 0 || alarms.Header.Revision < put.Header.Revision {
			t.Errorf("alarm list: %v, %v; want none, at revision %d or later", alarms, err, put.Header.Revision)
		}
		// The status tells the store's revision (etcdctl endpoint status
		// shows it); kine's answered 0.
		if st, err := c.Status(ctx, px.Endpoint); err != nil || st.Header.Revision < put.Header.Revision {
			t.Errorf("status: %v, %v; want at revision %d or later", st, err, put.Header.Revision)
		}
		if members, err := c.MemberList(ctx); err != nil || len(members.Members) != 1 {
			t.Errorf("member list: %v, %v; want one member", members, err)
		}

		for name, call := range map[string]func() error{
			"alarm disarm": func() error {
				_, err := c.AlarmDisarm(ctx, &clientv3.AlarmMember{Alarm: 1}) // NOSPACE
				return err
			},
			"defragment": func() error { _, err := c.Defragment(ctx, px.Endpoint); return err },
			"hash kv":    func() error { _, err := c.HashKV(ctx, px.Endpoint, 0); return err },
			"member add": func() error { _, err := c.MemberAdd(ctx, []string{"https://127.0.0.1:1"}); return err },
		} {
			if err := call(); status.Code(err) != codes.PermissionDenied {
				t.Errorf("%s: %v; want PermissionDenied", name, err)
			}
		}
	})
}
