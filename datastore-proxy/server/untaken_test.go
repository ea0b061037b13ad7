package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"kplex.dev/datastore-proxy/backend"
	"kplex.dev/datastore-proxy/internal/proxytest"
)

// A client that sends create requests that are refused (here a watch ID
// in use) and takes none of the answers has its stream ended once 1024
// answers wait for it, rather than growing them in the proxy, shared by
// every tenant, without bound (they grew for as long as it sent). etcd
// stops reading such a stream's requests instead.
func TestRefusedCreatesNobodyTakesEndTheStream(t *testing.T) {
	px := proxytest.Start(t, backend.Config{Kind: "sqlite"})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ws := rawWatch(t, ctx, px, "alpha", "/registry/a/", false)
	create := &etcdserverpb.WatchRequest{RequestUnion: &etcdserverpb.WatchRequest_CreateRequest{CreateRequest: &etcdserverpb.WatchCreateRequest{
		Key: []byte("/registry/b"), WatchId: 5,
	}}}
	if err := ws.Send(create); err != nil {
		t.Fatal(err)
	}
	if resp, err := ws.Recv(); err != nil || !resp.Created || resp.Canceled || resp.WatchId != 5 {
		t.Fatalf("watch 5: %v, %v", resp, err)
	}
	const sent = 5000 // past the stream's 64 KiB window and maxUntaken
	sendErr := make(chan error, 1)
	go func() {
		for range sent {
			if err := ws.Send(create); err != nil { // ID 5 again: refused

				sendErr <- err
				return
			}
		}
		sendErr <- nil
	}()
	// Take nothing until the proxy has ended the stream: its client's
	// Sends return before the proxy has read the requests, and a read
	// meanwhile would take the answers as they come.
	ended := `kplex_datastore_proxy_requests_total{code="ResourceExhausted",method="/etcdserverpb.Watch/Watch",tenant="alpha"} 1`
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(scrape(t, px.MetricsAddress), ended) {
		if time.Now().After(deadline) {
			t.Fatalf("the stream not ended 30 s after %d refused creates were sent, none of their answers taken (sends: %v)", sent, errOrPending(sendErr))
		}
		time.Sleep(50 * time.Millisecond)
	}
	refused := 0
	for {
		resp, err := ws.Recv()
		if err != nil {
			if status.Code(err) != codes.ResourceExhausted {
				t.Fatalf("after %d refusals taken: %v; want the stream ended with ResourceExhausted", refused, err)
			}
			break
		}
		if !resp.Canceled {
			t.Fatalf("answer %d: %v; want a refusal", refused+1, resp)
		}
		if refused++; refused == sent {
			t.Fatalf("all %d refusals waited for the client, and the stream is still open", sent)
		}
	}
	t.Logf("the stream ended after %d refusals taken, of %d creates sent", refused, sent)
}

// errOrPending is what errc holds, or "still sending".
func errOrPending(errc <-chan error) any {
	select {
	case err := <-errc:
		return err
	default:
		return "still sending"
	}
}
