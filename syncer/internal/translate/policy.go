package translate

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	psapi "k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
)

// Policy decides whether a tenant pod may run on the host, with the
// upstream Pod Security Standards checks at the tenant's level.
type Policy struct {
	eval  policy.Evaluator
	level psapi.LevelVersion
}

// NewPolicy returns the policy of a level: "baseline" or "restricted".
func NewPolicy(level string) (*Policy, error) {
	l, err := psapi.ParseLevel(level)
	if err != nil || l == psapi.LevelPrivileged {
		return nil, fmt.Errorf("pod security level %q: want baseline or restricted", level)
	}
	eval, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		return nil, fmt.Errorf("pod security evaluator: %w", err)
	}
	return &Policy{eval: eval, level: psapi.LevelVersion{Level: l, Version: psapi.LatestVersion()}}, nil
}

// Check returns "" when the pod may run, else why not, in the words of
// Pod Security admission.
func (p *Policy) Check(pod *corev1.Pod) string {
	res := policy.AggregateCheckResults(p.eval.EvaluatePod(p.level, &pod.ObjectMeta, &pod.Spec))
	if res.Allowed {
		return ""
	}
	return fmt.Sprintf("violates PodSecurity %q on the host: %s", p.level.Level, res.ForbiddenDetail())
}
