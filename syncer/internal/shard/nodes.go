package shard

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kplex.dev/api/naming"
	"kplex.dev/syncer/internal/translate"
)

// syncNode keeps a virtual node for each host node that runs one of the
// tenant's pods, and removes it when none does or the host node is gone.
func (s *tenantSyncer) syncNode(ctx context.Context, name string) error {
	hn := s.nodes.Node(name)
	vn, err := s.vnodes.Get(name)
	if apierrors.IsNotFound(err) {
		vn = nil
	} else if err != nil {
		return err
	}
	pods, err := s.podIndex.ByIndex(indexNode, name)
	if err != nil {
		return err
	}
	if hn == nil || len(pods) == 0 {
		if vn == nil || vn.Labels[naming.LabelManaged] != "true" {
			return nil
		}
		err := s.vclient.CoreV1().Nodes().Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &vn.UID}})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return fmt.Errorf("delete virtual node %s: %w", name, err)
		}
		return nil
	}
	return s.ensureVirtualNode(ctx, hn, vn)
}

// ensureVirtualNode creates or updates the virtual node mirroring hn; cur
// is the current virtual node, or nil.
func (s *tenantSyncer) ensureVirtualNode(ctx context.Context, hn, cur *corev1.Node) error {
	want := s.tr.Node(hn, s.cfg.RealNodes)
	nodes := s.vclient.CoreV1().Nodes()
	if cur == nil {
		created, err := nodes.Create(ctx, want, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			if created, err = nodes.Get(ctx, want.Name, metav1.GetOptions{}); err != nil {
				return fmt.Errorf("virtual node %s: %w", want.Name, err)
			}
		} else if err != nil {
			return fmt.Errorf("create virtual node %s: %w", want.Name, err)
		}
		cur = created
	}
	specDiff, statusDiff := translate.NodeNeedsUpdate(cur, want)
	if specDiff {
		out := cur.DeepCopy()
		out.Labels, out.Spec.Taints, out.Spec.Unschedulable = want.Labels, want.Spec.Taints, want.Spec.Unschedulable
		updated, err := nodes.Update(ctx, out, metav1.UpdateOptions{})
		if err != nil {
			return fmt.Errorf("update virtual node %s: %w", want.Name, err)
		}
		cur = updated
	}
	if statusDiff {
		out := cur.DeepCopy()
		out.Status = want.Status
		if _, err := nodes.UpdateStatus(ctx, out, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("update virtual node %s status: %w", want.Name, err)
		}
	}
	return nil
}
