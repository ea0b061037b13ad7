package translate

import (
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"kplex.dev/api/naming"
)

// testTenant is the tenant every translate test uses.
func testTenant() Tenant { return NewTenant("acme", "192.0.2.10", 6443) }

// testPod is a minimal virtual pod "web-0" in namespace "shop".
func testPod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-0", Namespace: "shop", UID: "uid-1"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "nginx"}}},
	}
}

func TestNewTenant(t *testing.T) {
	tr := testTenant()
	want := Tenant{Name: "acme", HostNamespace: "kplex-acme", APIHost: "192.0.2.10", APIPort: 6443}
	if !reflect.DeepEqual(tr, want) {
		t.Errorf("NewTenant = %+v, want %+v", tr, want)
	}
	if got := tr.HostName("shop", "web-0"); got != "web-0-shop-4" || got != naming.HostName("shop", "web-0") {
		t.Errorf("HostName = %q", got)
	}
}

func TestPodMetadata(t *testing.T) {
	v := testPod()
	v.Labels = map[string]string{
		"app":                 "web",
		"kplex.dev/tenant":    "evil",
		"kplex.dev/namespace": "kube-system",
		"kplex.dev/managed":   "false",
		"x.kplex.dev/foo":     "forged",
		"notkplex.dev/kept":   "yes",
	}
	v.Annotations = map[string]string{
		"note":            "hi",
		"kplex.dev/name":  "forged",
		"kplex.dev/uid":   "forged",
		"a.b.kplex.dev/c": "forged",
		"kubectl.kubernetes.io/last-applied-configuration": "{}",
	}
	h := testTenant().Pod(v, nil)

	if h.Name != "web-0-shop-4" || h.Namespace != "kplex-acme" {
		t.Errorf("host pod = %s/%s, want kplex-acme/web-0-shop-4", h.Namespace, h.Name)
	}
	wantLabels := map[string]string{
		"app":                 "web",
		"notkplex.dev/kept":   "yes",
		naming.LabelManaged:   "true",
		naming.LabelTenant:    "acme",
		naming.LabelNamespace: "shop",
	}
	if !reflect.DeepEqual(h.Labels, wantLabels) {
		t.Errorf("labels = %v, want %v", h.Labels, wantLabels)
	}
	wantAnn := map[string]string{
		"note":                     "hi",
		naming.AnnotationTenant:    "acme",
		naming.AnnotationNamespace: "shop",
		naming.AnnotationName:      "web-0",
		naming.AnnotationUID:       "uid-1",
	}
	if !reflect.DeepEqual(h.Annotations, wantAnn) {
		t.Errorf("annotations = %v, want %v", h.Annotations, wantAnn)
	}
	if VirtualUID(h) != "uid-1" {
		t.Errorf("VirtualUID = %q", VirtualUID(h))
	}
	// The virtual pod is not touched.
	if v.Labels["kplex.dev/tenant"] != "evil" || len(v.Annotations) != 5 {
		t.Errorf("virtual metadata mutated: %v %v", v.Labels, v.Annotations)
	}
}

func TestPodSpecCleared(t *testing.T) {
	v := testPod()
	v.Spec.ServiceAccountName = "builder"
	v.Spec.DeprecatedServiceAccount = "builder"
	v.Spec.AutomountServiceAccountToken = ptr.To(true)
	v.Spec.SchedulerName = "tenant-scheduler"
	v.Spec.PriorityClassName = "high"
	v.Spec.Priority = ptr.To(int32(1000))
	v.Spec.PreemptionPolicy = ptr.To(corev1.PreemptNever)
	v.Spec.NodeName = "node-1"
	h := testTenant().Pod(v, nil)

	s := h.Spec
	if s.ServiceAccountName != "" || s.DeprecatedServiceAccount != "" {
		t.Errorf("service account = %q/%q, want cleared", s.ServiceAccountName, s.DeprecatedServiceAccount)
	}
	if s.AutomountServiceAccountToken == nil || *s.AutomountServiceAccountToken {
		t.Errorf("automountServiceAccountToken = %v, want false", s.AutomountServiceAccountToken)
	}
	if s.SchedulerName != "" || s.PriorityClassName != "" || s.Priority != nil || s.PreemptionPolicy != nil {
		t.Errorf("scheduling fields not cleared: %q %q %v %v", s.SchedulerName, s.PriorityClassName, s.Priority, s.PreemptionPolicy)
	}
	if s.EnableServiceLinks == nil || *s.EnableServiceLinks {
		t.Errorf("host enableServiceLinks = %v, want false", s.EnableServiceLinks)
	}
	if s.NodeName != "node-1" {
		t.Errorf("nodeName = %q, want kept", s.NodeName)
	}
	if v.Spec.ServiceAccountName != "builder" || !*v.Spec.AutomountServiceAccountToken || v.Spec.Priority == nil {
		t.Errorf("virtual spec mutated: %+v", v.Spec)
	}
}

func TestPodObjectReferences(t *testing.T) {
	hn := naming.HostName
	v := testPod()
	v.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "regcred"}}
	v.Spec.Volumes = []corev1.Volume{
		{Name: "cm", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}},
		{Name: "sec", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "creds"}}},
		{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data-web-0"}}},
		{Name: "proj", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
			{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "pcfg"}}},
			{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "psec"}}},
		}}}},
		{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
	}
	refs := func(prefix string) corev1.Container {
		return corev1.Container{
			Name: prefix,
			Env: []corev1.EnvVar{
				{Name: "PLAIN", Value: "x"},
				{Name: "CM", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: prefix + "-cm"}, Key: "k"}}},
				{Name: "SEC", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: prefix + "-sec"}, Key: "k"}}},
			},
			EnvFrom: []corev1.EnvFromSource{
				{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: prefix + "-cmall"}}},
				{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: prefix + "-secall"}}},
			},
		}
	}
	v.Spec.InitContainers = []corev1.Container{refs("init")}
	v.Spec.Containers = []corev1.Container{refs("main")}
	v.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon(refs("debug"))}}
	h := testTenant().Pod(v, nil)

	vols := h.Spec.Volumes
	got := map[string]string{
		"imagePullSecret": h.Spec.ImagePullSecrets[0].Name,
		"configMap":       vols[0].ConfigMap.Name,
		"secret":          vols[1].Secret.SecretName,
		"claim":           vols[2].PersistentVolumeClaim.ClaimName,
		"projected cm":    vols[3].Projected.Sources[0].ConfigMap.Name,
		"projected sec":   vols[3].Projected.Sources[1].Secret.Name,
	}
	want := map[string]string{
		"imagePullSecret": hn("shop", "regcred"),
		"configMap":       hn("shop", "cfg"),
		"secret":          hn("shop", "creds"),
		"claim":           hn("shop", "data-web-0"),
		"projected cm":    hn("shop", "pcfg"),
		"projected sec":   hn("shop", "psec"),
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("volume references = %v, want %v", got, want)
	}
	if !reflect.DeepEqual(vols[4], v.Spec.Volumes[4]) {
		t.Errorf("emptyDir volume changed: %+v", vols[4])
	}
	containers := map[string]corev1.Container{
		"init":  h.Spec.InitContainers[0],
		"main":  h.Spec.Containers[0],
		"debug": corev1.Container(h.Spec.EphemeralContainers[0].EphemeralContainerCommon),
	}
	for prefix, c := range containers {
		env := envByName(c.Env)
		if got := env["CM"].ValueFrom.ConfigMapKeyRef.Name; got != hn("shop", prefix+"-cm") {
			t.Errorf("%s: env configMapKeyRef = %q", prefix, got)
		}
		if got := env["SEC"].ValueFrom.SecretKeyRef.Name; got != hn("shop", prefix+"-sec") {
			t.Errorf("%s: env secretKeyRef = %q", prefix, got)
		}
		if env["PLAIN"].Value != "x" {
			t.Errorf("%s: plain env = %+v", prefix, env["PLAIN"])
		}
		if got := c.EnvFrom[0].ConfigMapRef.Name; got != hn("shop", prefix+"-cmall") {
			t.Errorf("%s: envFrom configMapRef = %q", prefix, got)
		}
		if got := c.EnvFrom[1].SecretRef.Name; got != hn("shop", prefix+"-secall") {
			t.Errorf("%s: envFrom secretRef = %q", prefix, got)
		}
	}
	// The virtual pod keeps its own names.
	if v.Spec.Volumes[0].ConfigMap.Name != "cfg" || v.Spec.Containers[0].Env[1].ValueFrom.ConfigMapKeyRef.Name != "main-cm" || v.Spec.ImagePullSecrets[0].Name != "regcred" {
		t.Error("virtual pod references mutated")
	}
}

func TestPodServiceAccountToken(t *testing.T) {
	v := testPod()
	v.Spec.Volumes = []corev1.Volume{
		{Name: "cm", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}},
		{Name: "kube-api-access", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
			{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"}}},
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: ptr.To(int64(3607))}},
		}}}},
		{Name: "vault", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "vault/token", Audience: "vault"}},
		}}}},
	}
	h := testTenant().Pod(v, nil)

	secret := TokenSecretName(h.Name)
	if secret != "web-0-shop-4-token" {
		t.Errorf("TokenSecretName = %q", secret)
	}
	tests := []struct {
		vol, src  int
		key, path string
	}{
		{1, 1, "token-1-1", "token"},
		{2, 0, "token-2-0", "vault/token"},
	}
	for _, tt := range tests {
		got := h.Spec.Volumes[tt.vol].Projected.Sources[tt.src]
		want := corev1.VolumeProjection{Secret: &corev1.SecretProjection{
			LocalObjectReference: corev1.LocalObjectReference{Name: secret},
			Items:                []corev1.KeyToPath{{Key: tt.key, Path: tt.path}},
		}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("volume %d source %d = %+v, want %+v", tt.vol, tt.src, got, want)
		}
	}
	if got := h.Spec.Volumes[1].Projected.Sources[0].ConfigMap.Name; got != naming.HostName("shop", "kube-root-ca.crt") {
		t.Errorf("root CA source = %q", got)
	}
	if v.Spec.Volumes[1].Projected.Sources[1].ServiceAccountToken == nil {
		t.Error("virtual token projection mutated")
	}

	wantSources := []TokenSource{
		{Key: "token-1-1", Audience: "", ExpirationSeconds: 3607},
		{Key: "token-2-0", Audience: "vault", ExpirationSeconds: 3600},
	}
	if got := TokenSources(v); !reflect.DeepEqual(got, wantSources) {
		t.Errorf("TokenSources = %+v, want %+v", got, wantSources)
	}
	if got := TokenSources(testPod()); got != nil {
		t.Errorf("TokenSources(no volumes) = %+v, want nil", got)
	}
}

func TestPodDownwardAPI(t *testing.T) {
	tests := []struct{ in, want string }{
		{"metadata.name", "metadata.annotations['kplex.dev/name']"},
		{"metadata.namespace", "metadata.annotations['kplex.dev/namespace']"},
		{"metadata.uid", "metadata.annotations['kplex.dev/uid']"},
		{"metadata.labels['app']", "metadata.labels['app']"},
		{"spec.nodeName", "spec.nodeName"},
		{"status.podIP", "status.podIP"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			ref := func() *corev1.ObjectFieldSelector { return &corev1.ObjectFieldSelector{FieldPath: tt.in} }
			v := testPod()
			v.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "F", ValueFrom: &corev1.EnvVarSource{FieldRef: ref()}}}
			v.Spec.Volumes = []corev1.Volume{
				{Name: "dw", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{Items: []corev1.DownwardAPIVolumeFile{
					{Path: "f", FieldRef: ref()},
					{Path: "cpu", ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.cpu"}},
				}}}},
				{Name: "pj", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
					{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "f", FieldRef: ref()}}}},
				}}}},
			}
			h := testTenant().Pod(v, nil)
			got := []string{
				envByName(h.Spec.Containers[0].Env)["F"].ValueFrom.FieldRef.FieldPath,
				h.Spec.Volumes[0].DownwardAPI.Items[0].FieldRef.FieldPath,
				h.Spec.Volumes[1].Projected.Sources[0].DownwardAPI.Items[0].FieldRef.FieldPath,
			}
			for i, g := range got {
				if g != tt.want {
					t.Errorf("reference %d: fieldPath = %q, want %q", i, g, tt.want)
				}
			}
			if h.Spec.Volumes[0].DownwardAPI.Items[1].FieldRef != nil {
				t.Error("resourceFieldRef item gained a fieldRef")
			}
			if v.Spec.Containers[0].Env[0].ValueFrom.FieldRef.FieldPath != tt.in {
				t.Error("virtual fieldRef mutated")
			}
		})
	}
}

func TestPodHostnameSubdomain(t *testing.T) {
	tests := []struct {
		name, hostname, subdomain string
		wantHost, wantSub         string
	}{
		{name: "web-0", wantHost: "web-0"},
		{name: "web-0", hostname: "custom", wantHost: "custom"},
		{name: "web.0", wantHost: ""},
		{name: strings.Repeat("a", 64), wantHost: ""},
		{name: "web-0", subdomain: "db", wantHost: "web-0", wantSub: "db-shop-4"},
		{name: "web.0", hostname: "web", subdomain: "db", wantHost: "web", wantSub: "db-shop-4"},
	}
	for _, tt := range tests {
		v := testPod()
		v.Name = tt.name
		v.Spec.Hostname, v.Spec.Subdomain = tt.hostname, tt.subdomain
		h := testTenant().Pod(v, nil)
		if h.Spec.Hostname != tt.wantHost || h.Spec.Subdomain != tt.wantSub {
			t.Errorf("pod %q (hostname %q, subdomain %q): host hostname %q subdomain %q, want %q %q",
				tt.name, tt.hostname, tt.subdomain, h.Spec.Hostname, h.Spec.Subdomain, tt.wantHost, tt.wantSub)
		}
	}
}

// envByName indexes env vars by name; a duplicate name is kept once (tests
// that care count with envCount).
func envByName(env []corev1.EnvVar) map[string]corev1.EnvVar {
	m := map[string]corev1.EnvVar{}
	for _, e := range env {
		m[e.Name] = e
	}
	return m
}

func envCount(env []corev1.EnvVar, name string) int {
	n := 0
	for _, e := range env {
		if e.Name == name {
			n++
		}
	}
	return n
}

func TestPodDownwardServiceAccount(t *testing.T) {
	tr := NewTenant("demo", "10.0.0.1", 443)
	v := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "u"},
		Spec: corev1.PodSpec{
			ServiceAccountName: "builder",
			Containers: []corev1.Container{{Name: "c", Env: []corev1.EnvVar{{Name: "SA", ValueFrom: &corev1.EnvVarSource{
				FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.serviceAccountName"},
			}}}}},
		},
	}
	h := tr.Pod(v, nil)
	if h.Spec.ServiceAccountName != "" || h.Annotations[naming.AnnotationServiceAccount] != "builder" {
		t.Fatalf("host sa %q, annotation %q", h.Spec.ServiceAccountName, h.Annotations[naming.AnnotationServiceAccount])
	}
	var got string
	for _, e := range h.Spec.Containers[0].Env {
		if e.Name == "SA" {
			got = e.ValueFrom.FieldRef.FieldPath
		}
	}
	if want := "metadata.annotations['kplex.dev/service-account']"; got != want {
		t.Fatalf("fieldPath %q, want %q", got, want)
	}
}

// TestPodPlacement: dedicated nodes are forced onto every host pod; the
// tenant's other selector keys and tolerations stay.
func TestPodPlacement(t *testing.T) {
	dedicated := corev1.Toleration{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "acme", Effect: corev1.TaintEffectNoSchedule}
	tests := []struct {
		name             string
		selector         map[string]string
		tolerations      []corev1.Toleration
		podSelector      map[string]string
		podTolerations   []corev1.Toleration
		wantSelector     map[string]string
		wantTolerationsN int
	}{
		{name: "shared nodes: untouched", podSelector: map[string]string{"disk": "ssd"}, wantSelector: map[string]string{"disk": "ssd"}},
		{name: "dedicated: added", selector: map[string]string{"pool": "acme"}, tolerations: []corev1.Toleration{dedicated},
			wantSelector: map[string]string{"pool": "acme"}, wantTolerationsN: 1},
		{name: "tenant keys kept, placement wins", selector: map[string]string{"pool": "acme"},
			podSelector: map[string]string{"pool": "other", "disk": "ssd"}, wantSelector: map[string]string{"pool": "acme", "disk": "ssd"}},
		{name: "toleration not repeated", tolerations: []corev1.Toleration{dedicated}, podTolerations: []corev1.Toleration{dedicated},
			wantTolerationsN: 1},
		{name: "tenant's own toleration kept", tolerations: []corev1.Toleration{dedicated},
			podTolerations: []corev1.Toleration{{Key: "gpu", Operator: corev1.TolerationOpExists}}, wantTolerationsN: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := testTenant()
			tr.NodeSelector, tr.Tolerations = tt.selector, tt.tolerations
			v := testPod()
			v.Spec.NodeSelector, v.Spec.Tolerations = tt.podSelector, tt.podTolerations
			h := tr.Pod(v, nil)
			if len(h.Spec.NodeSelector) != len(tt.wantSelector) || (len(tt.wantSelector) > 0 && !reflect.DeepEqual(h.Spec.NodeSelector, tt.wantSelector)) {
				t.Errorf("nodeSelector = %v, want %v", h.Spec.NodeSelector, tt.wantSelector)
			}
			if len(h.Spec.Tolerations) != tt.wantTolerationsN {
				t.Errorf("tolerations = %v, want %d", h.Spec.Tolerations, tt.wantTolerationsN)
			}
			if tt.podSelector != nil && tt.podSelector["pool"] == "other" && v.Spec.NodeSelector["pool"] != "other" {
				t.Error("the virtual pod was modified")
			}
		})
	}
}
