package conformance

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/kubernetes"
	"go.uber.org/zap"
	"google.golang.org/grpc/grpclog"
	"k8s.io/apimachinery/pkg/api/apitesting"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apiserver/pkg/apis/example"
	examplev1 "k8s.io/apiserver/pkg/apis/example/v1"
	"k8s.io/apiserver/pkg/storage"
	"k8s.io/apiserver/pkg/storage/etcd3"
	storagetesting "k8s.io/apiserver/pkg/storage/testing"
	"k8s.io/apiserver/pkg/storage/value"
	"k8s.io/utils/clock"

	"kplex.dev/datastore-proxy/internal/proxytest"
)

var (
	scheme = runtime.NewScheme()
	codecs = serializer.NewCodecFactory(scheme)
	codec  = apitesting.TestCodec(codecs, examplev1.SchemeGroupVersion)
)

const valuePrefix = "test!"

func init() {
	metav1.AddToGroupVersion(scheme, metav1.SchemeGroupVersion)
	utilruntime.Must(example.AddToScheme(scheme))
	utilruntime.Must(examplev1.AddToScheme(scheme))
	grpclog.SetLoggerV2(grpclog.NewLoggerV2(io.Discard, io.Discard, os.Stderr))
}

// tenantSeq gives every test case a fresh tenant, so each starts from an
// empty keyspace on the shared proxy, as the suite expects.
var tenantSeq atomic.Int64

// tenantStore is an etcd3 store of kube-apiserver on the proxy, as one
// tenant, with a swappable value transformer for the tests that need one.
type tenantStore struct {
	storage.Interface
	client *clientv3.Client
	xf     *swappable
}

func newTenantStore(t *testing.T, px *proxytest.Proxy) *tenantStore {
	t.Helper()
	tenant := fmt.Sprintf("conformance-%d", tenantSeq.Add(1))
	c, err := kubernetes.New(clientv3.Config{
		Endpoints:   []string{"https://" + px.Endpoint},
		TLS:         px.ClientTLS(t, tenant, px.CA),
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	compactor := etcd3.NewCompactor(c.Client, 0, clock.RealClock{}, nil)
	t.Cleanup(compactor.Stop)
	xf := newSwappable(storagetesting.NewPrefixTransformer([]byte(valuePrefix), false))
	versioner := storage.APIObjectVersioner{}
	s, err := etcd3.New(c, compactor, codec,
		func() runtime.Object { return &example.Pod{} },
		func() runtime.Object { return &example.PodList{} },
		"", "/pods/", schema.GroupResource{Resource: "pods"},
		xf, etcd3.NewDefaultLeaseManagerConfig(), etcd3.NewDefaultDecoder(codec, versioner), versioner)
	if err != nil {
		t.Fatal(err)
	}
	if closer, ok := any(s).(interface{ Close() }); ok {
		t.Cleanup(closer.Close)
	}
	return &tenantStore{Interface: s, client: c.Client, xf: xf}
}

// UpdatePrefixTransformer implements storagetesting.InterfaceWithPrefixTransformer.
func (s *tenantStore) UpdatePrefixTransformer(modifier storagetesting.PrefixTransformerModifier) func() {
	return s.xf.update(modifier)
}

// increaseRV writes an unrelated key of the tenant.
func (s *tenantStore) increaseRV(ctx context.Context, t *testing.T) int64 {
	resp, err := s.client.Put(ctx, "increaseRV", "ok")
	if err != nil {
		t.Fatalf("increase RV: %v", err)
	}
	return resp.Header.Revision
}

// validateStored reads a key back through the proxy, as the tenant, and
// checks it holds a transformed, decodable object.
func (s *tenantStore) validateStored(ctx context.Context, t *testing.T, key string) {
	resp, err := s.client.Get(ctx, key)
	if err != nil || len(resp.Kvs) == 0 {
		t.Fatalf("stored key %s: %v (%d kvs)", key, err, len(resp.Kvs))
	}
	v := resp.Kvs[0].Value
	if len(v) < len(valuePrefix) || string(v[:len(valuePrefix)]) != valuePrefix {
		t.Fatalf("stored value of %s lacks the transformer prefix: %q", key, v)
	}
	obj, err := runtime.Decode(codec, v[len(valuePrefix):])
	if err != nil {
		t.Fatalf("decode stored %s: %v", key, err)
	}
	if pod, ok := obj.(*example.Pod); !ok || pod.ResourceVersion != "" {
		t.Fatalf("stored object of %s: %#v (resourceVersion must not be stored)", key, obj)
	}
}

// swappable is a value.Transformer whose prefix transformer the suite can
// replace and restore.
type swappable struct {
	mu       sync.RWMutex
	original *storagetesting.PrefixTransformer
	current  value.Transformer
}

func newSwappable(p *storagetesting.PrefixTransformer) *swappable {
	return &swappable{original: p, current: p}
}

func (s *swappable) get() value.Transformer {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.current
}

func (s *swappable) update(modifier storagetesting.PrefixTransformerModifier) func() {
	s.mu.Lock()
	defer s.mu.Unlock()
	cp := storagetesting.NewPrefixTransformer([]byte(valuePrefix), false)
	s.current = modifier(cp)
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.current = s.original
	}
}

func (s *swappable) TransformFromStorage(ctx context.Context, data []byte, dataCtx value.Context) ([]byte, bool, error) {
	return s.get().TransformFromStorage(ctx, data, dataCtx)
}

func (s *swappable) TransformToStorage(ctx context.Context, data []byte, dataCtx value.Context) ([]byte, error) {
	return s.get().TransformToStorage(ctx, data, dataCtx)
}
