package controller

import (
	"context"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"kplex.dev/api/v1alpha1"
	"kplex.dev/operator/internal/tenantpki"
)

// setCondition sets a condition, keeping its transition time when the
// status does not change.
func setCondition(vc *v1alpha1.VirtualCluster, typ string, ok bool, reason, msg string) {
	st := metav1.ConditionFalse
	if ok {
		st = metav1.ConditionTrue
	}
	apimeta.SetStatusCondition(&vc.Status.Conditions, metav1.Condition{
		Type: typ, Status: st, Reason: reason, Message: trimMessage(msg), ObservedGeneration: vc.Generation,
	})
}

// counts records the tenant's pods and nodes, read from its API with one
// item per list (the count comes from the list's remaining-item count).
func (s *run) counts(ctx context.Context) (bool, error) {
	kc, err := s.kubeconfig(tenantpki.Admin)
	if err != nil {
		return false, err
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(kc)
	if err != nil {
		return false, err
	}
	cfg.Timeout = 5 * time.Second
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return false, err
	}
	pods, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{Limit: 1})
	if err != nil {
		// Counts are informational: a failure does not hold the tenant back.
		s.log.Warn("cannot count the tenant's pods", "err", err)
		return true, nil
	}
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{Limit: 1})
	if err != nil {
		s.log.Warn("cannot count the tenant's nodes", "err", err)
		return true, nil
	}
	s.vc.Status.Pods = listCount(len(pods.Items), pods.RemainingItemCount)
	s.vc.Status.Nodes = listCount(len(nodes.Items), nodes.RemainingItemCount)
	return true, nil
}

func listCount(n int, remaining *int64) int32 {
	if remaining != nil {
		return int32(int64(n) + *remaining)
	}
	return int32(n)
}
