package translate

import (
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var (
	t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	t1 = t0.Add(time.Minute)
	t2 = t0.Add(time.Hour)
)

func TestPodStatus(t *testing.T) {
	v := testPod()
	v.Generation = 3
	v.Status = corev1.PodStatus{QOSClass: corev1.PodQOSBurstable, Phase: corev1.PodPending}
	host := &corev1.Pod{Status: corev1.PodStatus{
		Phase:             corev1.PodRunning,
		QOSClass:          corev1.PodQOSBestEffort,
		NominatedNodeName: "node-9",
		PodIP:             "10.1.2.3",
		PodIPs:            []corev1.PodIP{{IP: "10.1.2.3"}},
		HostIP:            "172.16.0.4",
		StartTime:         &metav1.Time{Time: t0},
		Conditions: []corev1.PodCondition{
			{Type: corev1.PodReady, Status: corev1.ConditionTrue, ObservedGeneration: 7},
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, ObservedGeneration: 7},
		},
		ObservedGeneration: 7,
		ContainerStatuses:  []corev1.ContainerStatus{{Name: "app", Ready: true, RestartCount: 2}},
	}}
	got := PodStatus(v, host)
	want := corev1.PodStatus{
		Phase:     corev1.PodRunning,
		QOSClass:  corev1.PodQOSBurstable,
		PodIP:     "10.1.2.3",
		PodIPs:    []corev1.PodIP{{IP: "10.1.2.3"}},
		HostIP:    "172.16.0.4",
		StartTime: &metav1.Time{Time: t0},
		Conditions: []corev1.PodCondition{
			{Type: corev1.PodReady, Status: corev1.ConditionTrue},
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue},
		},
		ObservedGeneration: 3,
		ContainerStatuses:  []corev1.ContainerStatus{{Name: "app", Ready: true, RestartCount: 2}},
	}
	if !StatusEqual(got, want) {
		t.Errorf("PodStatus =\n%+v\nwant\n%+v", got, want)
	}
	if host.Status.Conditions[0].ObservedGeneration != 7 || host.Status.NominatedNodeName != "node-9" {
		t.Error("host status mutated")
	}
	if StatusEqual(got, host.Status) {
		t.Error("StatusEqual(virtual, host) = true, want false")
	}
}

func TestEvicted(t *testing.T) {
	v := testPod()
	v.Status = corev1.PodStatus{
		Phase: corev1.PodRunning,
		Conditions: []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(t0)},
			{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(t0)},
			{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(t0)},
		},
		ContainerStatuses: []corev1.ContainerStatus{
			{Name: "running", Ready: true, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(t0)}}},
			{Name: "waiting", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff"}}},
			{Name: "done", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed"}}},
		},
	}
	before := v.Status.DeepCopy()
	got := Evicted(v, t1)

	want := corev1.PodStatus{
		Phase:   corev1.PodFailed,
		Reason:  "Evicted",
		Message: "The pod's host pod was deleted on the host cluster.",
		Conditions: []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(t0)},
			{Type: corev1.PodReady, Status: corev1.ConditionFalse, LastTransitionTime: metav1.NewTime(t1)},
			{Type: corev1.ContainersReady, Status: corev1.ConditionFalse, LastTransitionTime: metav1.NewTime(t1)},
		},
		ContainerStatuses: []corev1.ContainerStatus{
			{Name: "running", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 137, Reason: "Evicted", StartedAt: metav1.NewTime(t0), FinishedAt: metav1.NewTime(t1)}}},
			{Name: "waiting", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 137, Reason: "Evicted", FinishedAt: metav1.NewTime(t1)}}},
			{Name: "done", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed"}}},
		},
	}
	if !StatusEqual(got, want) {
		t.Errorf("Evicted =\n%+v\nwant\n%+v", got, want)
	}
	if !reflect.DeepEqual(v.Status, *before) {
		t.Error("virtual status mutated")
	}
}

func TestRefused(t *testing.T) {
	const msg = `violates PodSecurity "baseline" on the host: host namespaces (hostNetwork=true)`
	denied := func(m string, at time.Time) corev1.PodCondition {
		return corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: ReasonPolicyDenied, Message: m, LastTransitionTime: metav1.NewTime(at)}
	}
	other := corev1.PodCondition{Type: corev1.PodInitialized, Status: corev1.ConditionTrue}
	tests := []struct {
		name string
		in   corev1.PodStatus
		msg  string
		want corev1.PodStatus
	}{
		{
			name: "new pod",
			in:   corev1.PodStatus{},
			msg:  msg,
			want: corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{denied(msg, t1)}},
		},
		{
			name: "scheduled condition replaced, others kept",
			in: corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{
				other, {Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(t0)},
			}},
			msg:  msg,
			want: corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{other, denied(msg, t1)}},
		},
		{
			name: "same refusal keeps its transition time",
			in:   corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{denied(msg, t0)}},
			msg:  msg,
			want: corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{denied(msg, t0)}},
		},
		{
			name: "new reason replaces the old one",
			in:   corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{denied("old", t0)}},
			msg:  msg,
			want: corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{denied(msg, t1)}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := testPod()
			v.Status = tt.in
			got := Refused(v, tt.msg, t1)
			if !StatusEqual(got, tt.want) {
				t.Errorf("Refused =\n%+v\nwant\n%+v", got, tt.want)
			}
			// Idempotent: refusing again (later) changes nothing.
			v.Status = got
			again := Refused(v, tt.msg, t2)
			if !StatusEqual(again, got) {
				t.Errorf("second Refused =\n%+v\nwant\n%+v", again, got)
			}
		})
	}
}
