package server

import (
	"context"
	"testing"

	"google.golang.org/grpc"
)

// TestIdentifyResolvesOnce: after IdentifyUnary, handlers read the stored
// identity (here: the refusal for a context without a peer) rather than
// working it out again.
func TestIdentifyResolvesOnce(t *testing.T) {
	_, err := IdentifyUnary(context.Background(), nil, &grpc.UnaryServerInfo{}, func(ctx context.Context, _ any) (any, error) {
		if _, ok := ctx.Value(identityKey{}).(identity); !ok {
			t.Fatal("no identity stored for later interceptors")
		}
		_, err := TenantFromContext(ctx)
		return nil, err
	})
	if err == nil {
		t.Fatal("a call without a verified peer was not refused")
	}
}
