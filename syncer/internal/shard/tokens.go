package shard

import (
	"context"
	"fmt"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"kplex.dev/api/naming"
	"kplex.dev/syncer/internal/hostcache"
	"kplex.dev/syncer/internal/translate"
)

// maxTokenAge bounds how long a token is used before it is renewed, as a
// kubelet does, even when the tenant API extended its lifetime.
const maxTokenAge = 24 * time.Hour

// ensureToken gives a host pod the service-account tokens its virtual pod
// asks for, issued by the TENANT API (TokenRequest bound to the virtual
// pod), in the pod's token Secret. The Secret is owned by the host pod, so
// the host removes it with the pod. It returns when to renew.
func (s *tenantSyncer) ensureToken(ctx context.Context, v *corev1.Pod, hostPod string, hostUID types.UID) (time.Duration, error) {
	sources := translate.TokenSources(v)
	if len(sources) == 0 {
		return 0, nil
	}
	now := time.Now()
	// What this shard issued is known at once; what an earlier owner
	// issued comes from the bus.
	if at, ok := s.tokens.Load(v.UID); ok && now.Before(at.(time.Time)) {
		return at.(time.Time).Sub(now), nil
	}
	if cur := s.hostObjs.Get(hostcache.PodTokens, v.Namespace, v.Name); cur != nil && translate.VirtualUID(cur) == v.UID {
		if at, err := time.Parse(time.RFC3339, cur.GetAnnotations()[naming.AnnotationTokenExpiry]); err == nil && now.Before(at) {
			s.tokens.Store(v.UID, at)
			return at.Sub(now), nil
		}
	}
	sa := v.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	data := map[string][]byte{}
	renew := now.Add(maxTokenAge)
	for _, src := range sources {
		req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
			ExpirationSeconds: &src.ExpirationSeconds,
			BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: v.Name, UID: v.UID},
		}}
		if src.Audience != "" {
			req.Spec.Audiences = []string{src.Audience}
		}
		tr, err := s.vclient.CoreV1().ServiceAccounts(v.Namespace).CreateToken(ctx, sa, req, metav1.CreateOptions{})
		if err != nil {
			return 0, fmt.Errorf("token request for pod %s/%s (service account %s): %w", v.Namespace, v.Name, sa, err)
		}
		data[src.Key] = []byte(tr.Status.Token)
		// Renew at 80% of the requested lifetime (a kubelet's rule).
		if at := now.Add(time.Duration(src.ExpirationSeconds) * time.Second * 8 / 10); at.Before(renew) {
			renew = at
		}
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name:      translate.TokenSecretName(hostPod),
			Namespace: s.hostNS,
			Labels: map[string]string{
				naming.LabelManaged: "true", naming.LabelTenant: s.cfg.Name,
				naming.LabelNamespace: v.Namespace, naming.LabelRole: naming.RolePodToken,
			},
			Annotations: map[string]string{
				naming.AnnotationTenant: s.cfg.Name, naming.AnnotationNamespace: v.Namespace, naming.AnnotationName: v.Name,
				naming.AnnotationUID: string(v.UID), naming.AnnotationTokenExpiry: renew.UTC().Format(time.RFC3339),
			},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: hostPod, UID: hostUID}},
		},
		Type: corev1.SecretTypeOpaque,
		Data: data,
	}
	secrets := s.host.CoreV1().Secrets(s.hostNS)
	_, err := secrets.Create(ctx, secret, metav1.CreateOptions{FieldManager: s.fieldManager})
	if apierrors.IsAlreadyExists(err) {
		cur, gerr := secrets.Get(ctx, secret.Name, metav1.GetOptions{})
		if gerr != nil {
			return 0, fmt.Errorf("pod token secret %s: %w", secret.Name, gerr)
		}
		secret.ResourceVersion = cur.ResourceVersion
		_, err = secrets.Update(ctx, secret, metav1.UpdateOptions{FieldManager: s.fieldManager})
	}
	if err != nil {
		return 0, fmt.Errorf("pod token secret %s: %w", secret.Name, err)
	}
	s.tokens.Store(v.UID, renew)
	return renew.Sub(now), nil
}
