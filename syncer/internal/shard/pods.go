package shard

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"kplex.dev/syncer/internal/metrics"
	"kplex.dev/syncer/internal/translate"
)

// syncPod makes the host pod follow the virtual pod and the virtual pod's
// status follow the host pod. It returns when to look again (token
// refresh), if ever.
func (s *tenantSyncer) syncPod(ctx context.Context, ns, name string) (time.Duration, error) {
	v, err := s.pods.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		v = nil
	} else if err != nil {
		return 0, err
	}
	h := s.hostObjs.Pod(ns, name)
	switch {
	case v == nil:
		if h != nil {
			return 0, s.deleteHostPod(ctx, h, nil)
		}
		return 0, nil
	case h != nil && translate.VirtualUID(h) != v.UID:
		// Left by an earlier pod of the same name: replace it.
		return 0, s.deleteHostPod(ctx, h, ptr.To[int64](0))
	case v.DeletionTimestamp != nil:
		if h != nil {
			if h.DeletionTimestamp == nil {
				return 0, s.deleteHostPod(ctx, h, v.DeletionGracePeriodSeconds)
			}
			return 0, nil
		}
		// The host pod is gone: finish the deletion, as a kubelet would.
		err := s.vclient.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0), Preconditions: &metav1.Preconditions{UID: &v.UID}})
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			return 0, nil
		}
		return 0, err
	case h == nil:
		return s.createHostPod(ctx, v)
	}
	requeue, err := s.ensureToken(ctx, v, h.Name, h.UID)
	if err != nil {
		return 0, err
	}
	if err := s.updateHostPod(ctx, v, h); err != nil {
		return 0, err
	}
	return requeue, s.syncPodStatus(ctx, v, h)
}

func (s *tenantSyncer) createHostPod(ctx context.Context, v *corev1.Pod) (time.Duration, error) {
	if terminal(v) {
		return 0, nil
	}
	if v.Status.StartTime != nil || v.Status.HostIP != "" {
		return 0, s.evictIfGone(ctx, v)
	}
	if why := s.policy.Check(v); why != "" {
		return 0, s.refuse(ctx, v, why)
	}
	// What the pod mounts goes first, so the host pod can start at once.
	refs := translate.PodReferences(&v.Spec)
	for _, n := range refs.ConfigMaps {
		if err := s.syncConfigMap(ctx, v.Namespace, n); err != nil {
			return 0, err
		}
	}
	for _, n := range refs.Secrets {
		if err := s.syncSecret(ctx, v.Namespace, n); err != nil {
			return 0, err
		}
	}
	var services []*corev1.Service
	if v.Spec.EnableServiceLinks == nil || *v.Spec.EnableServiceLinks {
		var err error
		if services, err = s.services.Services(v.Namespace).List(labels.Everything()); err != nil {
			return 0, err
		}
	}
	want := s.tr.Pod(v, services)
	created, err := s.host.CoreV1().Pods(s.hostNS).Create(ctx, want, metav1.CreateOptions{FieldManager: s.fieldManager})
	if apierrors.IsAlreadyExists(err) {
		return 0, nil // the bus has not told us yet; it will
	}
	if err != nil {
		return 0, fmt.Errorf("create host pod %s: %w", want.Name, err)
	}
	metrics.SyncLatency.WithLabelValues(s.cfg.Name, kindPod).Observe(time.Since(v.CreationTimestamp.Time).Seconds())
	return s.ensureToken(ctx, v, created.Name, created.UID)
}

// evictIfGone handles a running virtual pod without a host pod: if the
// host really has none (asked directly, not the cache), the pod was
// evicted under it.
func (s *tenantSyncer) evictIfGone(ctx context.Context, v *corev1.Pod) error {
	hostName := s.tr.HostName(v.Namespace, v.Name)
	if _, err := s.host.CoreV1().Pods(s.hostNS).Get(ctx, hostName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		return err // exists (the bus is behind) or cannot tell: look again later
	}
	if err := s.patchPodStatus(ctx, v, translate.Evicted(v, time.Now())); err != nil {
		return fmt.Errorf("mark pod evicted: %w", err)
	}
	s.recorder.Eventf(v, corev1.EventTypeWarning, "Evicted", "The host pod %s/%s was deleted on the host cluster", s.hostNS, hostName)
	s.log.Info("virtual pod evicted: its host pod was deleted", "namespace", v.Namespace, "pod", v.Name)
	return nil
}

func (s *tenantSyncer) refuse(ctx context.Context, v *corev1.Pod, why string) error {
	st := translate.Refused(v, why, time.Now())
	if equality.Semantic.DeepEqual(st, v.Status) {
		return nil
	}
	if err := s.patchPodStatus(ctx, v, st); err != nil {
		return fmt.Errorf("mark pod refused: %w", err)
	}
	metrics.PolicyDenied.WithLabelValues(s.cfg.Name).Inc()
	s.recorder.Event(v, corev1.EventTypeWarning, "PolicyDenied", "kplex refused to run this pod on the host: "+why)
	s.log.Info("pod refused by the host policy", "namespace", v.Namespace, "pod", v.Name, "reason", why)
	return nil
}

func (s *tenantSyncer) deleteHostPod(ctx context.Context, h *corev1.Pod, grace *int64) error {
	err := s.host.CoreV1().Pods(s.hostNS).Delete(ctx, h.Name, metav1.DeleteOptions{GracePeriodSeconds: grace, Preconditions: &metav1.Preconditions{UID: &h.UID}})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete host pod %s: %w", h.Name, err)
	}
	return nil
}

// updateHostPod propagates the spec changes a host allows on a running
// pod: images, activeDeadlineSeconds, added tolerations, and container
// resources (in-place resize).
func (s *tenantSyncer) updateHostPod(ctx context.Context, v, h *corev1.Pod) error {
	if h.DeletionTimestamp != nil {
		return nil
	}
	patch := map[string]any{}
	images := func(vc, hc []corev1.Container) []map[string]string {
		var out []map[string]string
		for _, c := range vc {
			for _, cur := range hc {
				if cur.Name == c.Name && cur.Image != c.Image {
					out = append(out, map[string]string{"name": c.Name, "image": c.Image})
				}
			}
		}
		return out
	}
	if c := images(v.Spec.Containers, h.Spec.Containers); c != nil {
		patch["containers"] = c
	}
	if c := images(v.Spec.InitContainers, h.Spec.InitContainers); c != nil {
		patch["initContainers"] = c
	}
	if !equality.Semantic.DeepEqual(v.Spec.ActiveDeadlineSeconds, h.Spec.ActiveDeadlineSeconds) && v.Spec.ActiveDeadlineSeconds != nil {
		patch["activeDeadlineSeconds"] = *v.Spec.ActiveDeadlineSeconds
	}
	tolerations := append([]corev1.Toleration(nil), h.Spec.Tolerations...)
	for _, t := range v.Spec.Tolerations {
		found := false
		for _, ht := range h.Spec.Tolerations {
			if equality.Semantic.DeepEqual(t, ht) {
				found = true
			}
		}
		if !found {
			tolerations = append(tolerations, t)
		}
	}
	if len(tolerations) != len(h.Spec.Tolerations) {
		patch["tolerations"] = tolerations
	}
	if err := s.patchHostPod(ctx, h.Name, patch); err != nil {
		return err
	}
	// Resources change through the resize subresource (in-place resize).
	var resize []map[string]any
	for _, c := range v.Spec.Containers {
		for _, cur := range h.Spec.Containers {
			if cur.Name == c.Name && !equality.Semantic.DeepEqual(cur.Resources, c.Resources) {
				resize = append(resize, map[string]any{"name": c.Name, "resources": c.Resources})
			}
		}
	}
	if resize != nil {
		return s.patchHostPod(ctx, h.Name, map[string]any{"containers": resize}, "resize")
	}
	return nil
}

func (s *tenantSyncer) patchHostPod(ctx context.Context, name string, spec map[string]any, subresource ...string) error {
	if len(spec) == 0 {
		return nil
	}
	body, err := json.Marshal(map[string]any{"spec": spec})
	if err != nil {
		return err
	}
	_, err = s.host.CoreV1().Pods(s.hostNS).Patch(ctx, name, types.StrategicMergePatchType, body, metav1.PatchOptions{FieldManager: s.fieldManager}, subresource...)
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("update host pod %s %v: %w", name, subresource, err)
	}
	return nil
}

// syncPodStatus binds the virtual pod to its host pod's node (creating
// the virtual node first) and mirrors the host pod's status. Status is
// written as a patch carrying the pod's UID, not an update: the informer's
// copy is often a write behind (after a bind), and an update would fail
// with a conflict and wait for a retry.
func (s *tenantSyncer) syncPodStatus(ctx context.Context, v, h *corev1.Pod) error {
	if v.Spec.NodeName == "" && h.Spec.NodeName != "" {
		if hn := s.nodes.Node(h.Spec.NodeName); hn != nil {
			vn, _ := s.vnodes.Get(hn.Name)
			if err := s.ensureVirtualNode(ctx, hn, vn); err != nil {
				return err
			}
		}
		b := &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: v.Name, UID: v.UID}, Target: corev1.ObjectReference{Kind: "Node", Name: h.Spec.NodeName}}
		if err := s.vclient.CoreV1().Pods(v.Namespace).Bind(ctx, b, metav1.CreateOptions{}); err != nil && !apierrors.IsConflict(err) {
			return fmt.Errorf("bind pod to %s: %w", h.Spec.NodeName, err)
		}
	}
	want := translate.PodStatus(v, h)
	if translate.StatusEqual(v.Status, want) {
		return nil
	}
	return s.patchPodStatus(ctx, v, want)
}

// patchPodStatus replaces a virtual pod's status (lists whole, as a merge
// patch does), only if the pod is still the one with v's UID.
func (s *tenantSyncer) patchPodStatus(ctx context.Context, v *corev1.Pod, st corev1.PodStatus) error {
	body, err := json.Marshal(map[string]any{"metadata": map[string]any{"uid": v.UID}, "status": st})
	if err != nil {
		return err
	}
	_, err = s.vclient.CoreV1().Pods(v.Namespace).Patch(ctx, v.Name, types.MergePatchType, body, metav1.PatchOptions{}, "status")
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil // gone, or replaced by a pod of the same name
	}
	if err != nil {
		return fmt.Errorf("update pod status: %w", err)
	}
	return nil
}
