package shard

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kplex.dev/syncer/internal/metrics"
	"kplex.dev/syncer/internal/natsbus"
)

// hostEvent queues a host Event about one of the tenant's objects (the
// relay already rewrote its involved object to the virtual one).
func (s *tenantSyncer) hostEvent(d natsbus.Delivery) {
	var e corev1.Event
	if err := json.Unmarshal(d.Message.Object, &e); err != nil {
		s.log.Warn("ignoring a host event that does not decode", "err", err)
		return
	}
	metrics.HostEvents.WithLabelValues(s.cfg.Name, natsbus.EventsResource).Inc()
	s.events.Store(d.Key.Namespace+"/"+d.Key.Name, &e)
	s.queue.Add(key{kindEvent, d.Key.Namespace, d.Key.Name})
}

// syncEvent writes a queued host Event into the tenant's namespace, on
// the virtual object, under a name derived from the host Event's.
func (s *tenantSyncer) syncEvent(ctx context.Context, ns, hostName string) error {
	id := ns + "/" + hostName
	v, ok := s.events.Load(id)
	if !ok {
		return nil
	}
	if err := s.writeEvent(ctx, ns, hostName, v.(*corev1.Event)); err != nil {
		return err // kept for the retry
	}
	s.events.CompareAndDelete(id, v)
	return nil
}

func (s *tenantSyncer) writeEvent(ctx context.Context, ns, hostName string, h *corev1.Event) error {
	suffix := hostName
	if i := strings.LastIndexByte(hostName, '.'); i >= 0 {
		suffix = hostName[i+1:]
	}
	name := h.InvolvedObject.Name + "." + suffix
	// Only objects the tenant still has: an Event about a gone object
	// would only confuse.
	switch h.InvolvedObject.Kind {
	case "Pod":
		p, err := s.pods.Pods(ns).Get(h.InvolvedObject.Name)
		if err != nil || p.UID != h.InvolvedObject.UID {
			return nil
		}
	case "Service":
		if _, err := s.services.Services(ns).Get(h.InvolvedObject.Name); err != nil {
			return nil
		}
	}
	want := &corev1.Event{
		ObjectMeta:          metav1.ObjectMeta{Name: name, Namespace: ns},
		InvolvedObject:      h.InvolvedObject,
		Reason:              h.Reason,
		Message:             h.Message,
		Type:                h.Type,
		Count:               h.Count,
		FirstTimestamp:      h.FirstTimestamp,
		LastTimestamp:       h.LastTimestamp,
		EventTime:           h.EventTime,
		Series:              h.Series,
		Action:              h.Action,
		Source:              h.Source,
		ReportingController: h.ReportingController,
		ReportingInstance:   h.ReportingInstance,
	}
	if want.ReportingController == "" && want.Source.Component == "" {
		want.Source.Component = "kplex-syncer"
	}
	events := s.vclient.CoreV1().Events(ns)
	_, err := events.Create(ctx, want, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		cur, gerr := events.Get(ctx, name, metav1.GetOptions{})
		if gerr != nil {
			return fmt.Errorf("event %s: %w", name, gerr)
		}
		if cur.Count == want.Count && cur.LastTimestamp.Equal(&want.LastTimestamp) && cur.Message == want.Message {
			return nil
		}
		want.ResourceVersion = cur.ResourceVersion
		_, err = events.Update(ctx, want, metav1.UpdateOptions{})
	}
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("event %s: %w", name, err)
	}
	return nil
}
