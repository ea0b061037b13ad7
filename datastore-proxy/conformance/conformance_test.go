package conformance

import (
	"context"
	"testing"

	storagetesting "k8s.io/apiserver/pkg/storage/testing"

	"kplex.dev/datastore-proxy/backend"
	"kplex.dev/datastore-proxy/internal/proxytest"
)

// suite lists the upstream storage tests the proxy runs, each on a fresh
// tenant. Left out, by design: the tests that compact (RunTestList's
// compaction cases, RunTestCompactRevision, RunTestListInconsistentContinuation,
// RunTestWatchFromZero) -- a tenant's compaction request does not compact
// the shared store, so "compacted" never follows it -- and the tests that
// reach into the etcd3 store's unexported fields (RunTestStats, the
// transformer-override error aggregation tests).
var suite = []struct {
	name string
	run  func(ctx context.Context, t *testing.T, s *tenantStore)
}{
	{"Create", func(ctx context.Context, t *testing.T, s *tenantStore) {
		storagetesting.RunTestCreate(ctx, t, s, s.validateStored)
	}},
	{"CreateWithTTL", func(ctx context.Context, t *testing.T, s *tenantStore) {
		storagetesting.RunTestCreateWithTTL(ctx, t, s)
	}},
	{"CreateWithKeyExist", func(ctx context.Context, t *testing.T, s *tenantStore) {
		storagetesting.RunTestCreateWithKeyExist(ctx, t, s)
	}},
	{"Get", func(ctx context.Context, t *testing.T, s *tenantStore) { storagetesting.RunTestGet(ctx, t, s) }},
	{"UnconditionalDelete", func(ctx context.Context, t *testing.T, s *tenantStore) {
		storagetesting.RunTestUnconditionalDelete(ctx, t, s)
	}},
	{"ConditionalDelete", func(ctx context.Context, t *testing.T, s *tenantStore) {
		storagetesting.RunTestConditionalDelete(ctx, t, s)
	}},
	{"DeleteWithSuggestion", func(ctx context.Context, t *testing.T, s *tenantStore) {
		storagetesting.RunTestDeleteWithSuggestion(ctx, t, s)
	}},
	{"DeleteWithSuggestionAndConflict", func(ctx context.Context, t *testing.T, s *tenantStore) {
		storagetesting.RunTestDeleteWithSuggestionAndConflict(ctx, t, s)
	}},
	{"DeleteWithSuggestionOfDeletedObject", func(ctx context.Context, t *testing.T, s *tenantStore) {
		storagetesting.RunTestDeleteWithSuggestionOfDeletedObject(ctx, t, s)
	}},
	{"ValidateDeletionWithSuggestion", func(ctx context.Context, t *testing.T, s *tenantStore) {
		storagetesting.RunTestValidateDeletionWithSuggestion(ctx, t, s)
	}},
	{"ValidateDeletionWithOnlySuggestionValid", func(ctx context.Context, t *testing.T, s *tenantStore) {
		storagetesting.RunTestValidateDeletionWithOnlySuggestionValid(ctx, t, s)
	}},
	{"DeleteWithConflict", func(ctx context.Context, t *testing.T, s *tenantStore) {
		storagetesting.RunTestDeleteWithConflict(ctx, t, s)
	}},
	{"PreconditionalDeleteWithSuggestion", func(ctx context.Context, t *testing.T, s *tenantStore) {
		storagetesting.RunTestPreconditionalDeleteWithSuggestion(ctx, t, s)
	}},
	{"PreconditionalDeleteWithOnlySuggestionPass", func(ctx context.Context, t *testing.T, s *tenantStore) {
		storagetesting.RunTestPreconditionalDeleteWithOnlySuggestionPass(ctx, t, s)
	}},
	{"ListPaging", func(ctx context.Context, t *testing.T, s *tenantStore) { storagetesting.RunTestListPaging(ctx, t, s) }},
	{"GetListNonRecursive", func(ctx context.Context, t *testing.T, s *tenantStore) {
		storagetesting.RunTestGetListNonRecursive(ctx, t, s.increaseRV, s)
	}},
	{"GetListRecursivePrefix", func(ctx context.Context, t *testing.T, s *tenantStore) {
		storagetesting.RunTestGetListRecursivePrefix(ctx, t, s)
	}},
	{"KeySchema", func(ctx context.Context, t *testing.T, s *tenantStore) { storagetesting.RunTestKeySchema(ctx, t, s) }},
	{"GuaranteedUpdate", func(ctx context.Context, t *testing.T, s *tenantStore) {
		storagetesting.RunTestGuaranteedUpdate(ctx, t, s, s.validateStored)
	}},
	{"GuaranteedUpdateWithTTL", func(ctx context.Context, t *testing.T, s *tenantStore) {
		storagetesting.RunTestGuaranteedUpdateWithTTL(ctx, t, s)
	}},
	{"GuaranteedUpdateChecksStoredData", func(ctx context.Context, t *testing.T, s *tenantStore) {
		storagetesting.RunTestGuaranteedUpdateChecksStoredData(ctx, t, s)
	}},
	{"GuaranteedUpdateWithConflict", func(ctx context.Context, t *testing.T, s *tenantStore) {
		storagetesting.RunTestGuaranteedUpdateWithConflict(ctx, t, s)
	}},
	{"GuaranteedUpdateWithSuggestionAndConflict", func(ctx context.Context, t *testing.T, s *tenantStore) {
		storagetesting.RunTestGuaranteedUpdateWithSuggestionAndConflict(ctx, t, s)
	}},
	{"TransformationFailure", func(ctx context.Context, t *testing.T, s *tenantStore) {
		storagetesting.RunTestTransformationFailure(ctx, t, s)
	}},
	{"ListContinuation", func(ctx context.Context, t *testing.T, s *tenantStore) {
		storagetesting.RunTestListContinuation(ctx, t, s, nil)
	}},
	{"ListPaginationRareObject", func(ctx context.Context, t *testing.T, s *tenantStore) {
		storagetesting.RunTestListPaginationRareObject(ctx, t, s, nil)
	}},
	{"ListContinuationWithFilter", func(ctx context.Context, t *testing.T, s *tenantStore) {
		storagetesting.RunTestListContinuationWithFilter(ctx, t, s, nil)
	}},
	{"NamespaceScopedList", func(ctx context.Context, t *testing.T, s *tenantStore) {
		storagetesting.RunTestNamespaceScopedList(ctx, t, s)
	}},
	{"ConsistentList", func(ctx context.Context, t *testing.T, s *tenantStore) {
		storagetesting.RunTestConsistentList(ctx, t, s, s.increaseRV, false, true, false)
	}},
	{"ListResourceVersionMatch", func(ctx context.Context, t *testing.T, s *tenantStore) {
		storagetesting.RunTestListResourceVersionMatch(ctx, t, s)
	}},
	{"Watch", func(ctx context.Context, t *testing.T, s *tenantStore) { storagetesting.RunTestWatch(ctx, t, s) }},
	{"ClusterScopedWatch", func(ctx context.Context, t *testing.T, s *tenantStore) {
		storagetesting.RunTestClusterScopedWatch(ctx, t, s)
	}},
	{"NamespaceScopedWatch", func(ctx context.Context, t *testing.T, s *tenantStore) {
		storagetesting.RunTestNamespaceScopedWatch(ctx, t, s)
	}},
	{"DeleteTriggerWatch", func(ctx context.Context, t *testing.T, s *tenantStore) {
		storagetesting.RunTestDeleteTriggerWatch(ctx, t, s)
	}},
	{"WatchFromNonZero", func(ctx context.Context, t *testing.T, s *tenantStore) {
		storagetesting.RunTestWatchFromNonZero(ctx, t, s)
	}},
	{"DelayedWatchDelivery", func(ctx context.Context, t *testing.T, s *tenantStore) {
		storagetesting.RunTestDelayedWatchDelivery(ctx, t, s)
	}},
	{"WatchError", func(ctx context.Context, t *testing.T, s *tenantStore) { storagetesting.RunTestWatchError(ctx, t, s) }},
	{"WatchContextCancel", func(ctx context.Context, t *testing.T, s *tenantStore) {
		storagetesting.RunTestWatchContextCancel(ctx, t, s)
	}},
	{"WatcherTimeout", func(ctx context.Context, t *testing.T, s *tenantStore) {
		storagetesting.RunTestWatcherTimeout(ctx, t, s)
	}},
	{"WatchDeleteEventObjectHaveLatestRV", func(ctx context.Context, t *testing.T, s *tenantStore) {
		storagetesting.RunTestWatchDeleteEventObjectHaveLatestRV(ctx, t, s)
	}},
	{"WatchInitializationSignal", func(ctx context.Context, t *testing.T, s *tenantStore) {
		storagetesting.RunTestWatchInitializationSignal(ctx, t, s)
	}},
	{"WatchDispatchBookmarkEvents", func(ctx context.Context, t *testing.T, s *tenantStore) {
		storagetesting.RunTestWatchDispatchBookmarkEvents(ctx, t, s, false)
	}},
}

func TestStorageConformance(t *testing.T) {
	proxytest.ForEachBackend(t, func(t *testing.T, b backend.Config) {
		px := proxytest.Start(t, b)
		for _, tc := range suite {
			t.Run(tc.name, func(t *testing.T) {
				tc.run(context.Background(), t, newTenantStore(t, px))
			})
		}
	})
}
