package translate

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PodStatus is the virtual pod's status mirroring its host pod: phase,
// conditions, IPs, container statuses. The tenant's own QoS class is kept.
func PodStatus(v, host *corev1.Pod) corev1.PodStatus {
	s := *host.Status.DeepCopy()
	s.QOSClass = v.Status.QOSClass
	s.NominatedNodeName = ""
	s.ObservedGeneration = v.Generation
	for i := range s.Conditions {
		s.Conditions[i].ObservedGeneration = 0
	}
	return s
}

// StatusEqual reports whether two pod statuses are the same for the
// purpose of writing one over the other.
func StatusEqual(a, b corev1.PodStatus) bool { return equality.Semantic.DeepEqual(a, b) }

// Evicted is the status a kubelet gives a pod it evicts: what the tenant
// sees when its pod's host pod disappears under it.
func Evicted(v *corev1.Pod, now time.Time) corev1.PodStatus {
	s := *v.Status.DeepCopy()
	s.Phase = corev1.PodFailed
	s.Reason = "Evicted"
	s.Message = "The pod's host pod was deleted on the host cluster."
	for i := range s.Conditions {
		if s.Conditions[i].Type == corev1.PodReady || s.Conditions[i].Type == corev1.ContainersReady {
			s.Conditions[i].Status = corev1.ConditionFalse
			s.Conditions[i].LastTransitionTime = metav1.NewTime(now)
		}
	}
	for _, statuses := range [][]corev1.ContainerStatus{s.InitContainerStatuses, s.ContainerStatuses, s.EphemeralContainerStatuses} {
		for i := range statuses {
			c := &statuses[i]
			if c.State.Running != nil || c.State.Waiting != nil {
				started := metav1.Time{}
				if c.State.Running != nil {
					started = c.State.Running.StartedAt
				}
				c.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 137, Reason: "Evicted", StartedAt: started, FinishedAt: metav1.NewTime(now)}}
				c.Ready = false
			}
		}
	}
	return s
}

// Refused marks a pod the host policy refused: it stays Pending with a
// PodScheduled=False condition whose reason and message say why.
func Refused(v *corev1.Pod, message string, now time.Time) corev1.PodStatus {
	s := *v.Status.DeepCopy()
	s.Phase = corev1.PodPending
	cond := corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: ReasonPolicyDenied, Message: message, LastTransitionTime: metav1.NewTime(now)}
	for i := range s.Conditions {
		if s.Conditions[i].Type == corev1.PodScheduled {
			if s.Conditions[i].Reason == cond.Reason && s.Conditions[i].Message == cond.Message {
				return s
			}
			s.Conditions[i] = cond
			return s
		}
	}
	s.Conditions = append(s.Conditions, cond)
	return s
}

// ReasonPolicyDenied is the reason of a pod refused by the host policy.
const ReasonPolicyDenied = "KplexPolicyDenied"
