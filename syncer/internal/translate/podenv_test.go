package translate

import (
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestPodAPIEnv(t *testing.T) {
	v := testPod()
	v.Spec.InitContainers = []corev1.Container{{Name: "init"}}
	v.Spec.Containers = []corev1.Container{{Name: "app", Env: []corev1.EnvVar{
		{Name: "KUBERNETES_SERVICE_HOST", Value: "mine"},
		{Name: "OTHER", Value: "1"},
	}}}
	v.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debug"}}}
	h := testTenant().Pod(v, nil)

	want := map[string]string{
		"KUBERNETES_SERVICE_HOST":       "192.0.2.10",
		"KUBERNETES_SERVICE_PORT":       "6443",
		"KUBERNETES_SERVICE_PORT_HTTPS": "6443",
		"KUBERNETES_PORT":               "tcp://192.0.2.10:6443",
		"KUBERNETES_PORT_443_TCP":       "tcp://192.0.2.10:6443",
		"KUBERNETES_PORT_443_TCP_PROTO": "tcp",
		"KUBERNETES_PORT_443_TCP_PORT":  "6443",
		"KUBERNETES_PORT_443_TCP_ADDR":  "192.0.2.10",
	}
	containers := map[string][]corev1.EnvVar{
		"init":  h.Spec.InitContainers[0].Env,
		"debug": h.Spec.EphemeralContainers[0].Env,
	}
	for name, env := range containers {
		if len(env) != len(want) {
			t.Errorf("%s: %d env vars, want %d: %+v", name, len(env), len(want), env)
		}
		for k, val := range want {
			if envCount(env, k) != 1 || envByName(env)[k].Value != val {
				t.Errorf("%s: %s = %+v (count %d), want %q", name, k, envByName(env)[k], envCount(env, k), val)
			}
		}
	}

	// The container's own variable wins and appears once; the generated
	// ones come first, the container's own keep their order after them.
	env := h.Spec.Containers[0].Env
	if n := envCount(env, "KUBERNETES_SERVICE_HOST"); n != 1 {
		t.Fatalf("KUBERNETES_SERVICE_HOST appears %d times: %+v", n, env)
	}
	if got := envByName(env)["KUBERNETES_SERVICE_HOST"].Value; got != "mine" {
		t.Errorf("KUBERNETES_SERVICE_HOST = %q, want the container's own", got)
	}
	if got := envByName(env)["KUBERNETES_SERVICE_PORT"].Value; got != "6443" {
		t.Errorf("KUBERNETES_SERVICE_PORT = %q", got)
	}
	n := len(env)
	if n != len(want)+1 || env[n-2].Name != "KUBERNETES_SERVICE_HOST" || env[n-1].Name != "OTHER" {
		t.Errorf("env order = %+v", env)
	}
}

func TestPodAPIEnvIPv6AndNone(t *testing.T) {
	h := NewTenant("acme", "fd00::1", 443).Pod(testPod(), nil)
	if got := envByName(h.Spec.Containers[0].Env)["KUBERNETES_PORT"].Value; got != "tcp://[fd00::1]:443" {
		t.Errorf("KUBERNETES_PORT = %q", got)
	}
	h = NewTenant("acme", "", 0).Pod(testPod(), nil)
	if env := h.Spec.Containers[0].Env; len(env) != 0 {
		t.Errorf("no API host: env = %+v, want none", env)
	}
}

func svc(name, ip string, typ corev1.ServiceType, ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop"},
		Spec:       corev1.ServiceSpec{Type: typ, ClusterIP: ip, Ports: ports},
	}
}

func TestPodServiceLinks(t *testing.T) {
	services := []*corev1.Service{
		svc("my-cache", "10.0.0.6", corev1.ServiceTypeClusterIP, corev1.ServicePort{Port: 6379, Protocol: corev1.ProtocolUDP}),
		svc("db", "10.0.0.5", corev1.ServiceTypeClusterIP,
			corev1.ServicePort{Name: "pg", Port: 5432, Protocol: corev1.ProtocolTCP},
			corev1.ServicePort{Name: "metrics-http", Port: 9187}),
		svc("headless", corev1.ClusterIPNone, corev1.ServiceTypeClusterIP, corev1.ServicePort{Port: 80}),
		{ObjectMeta: metav1.ObjectMeta{Name: "ext", Namespace: "shop"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "example.com", Ports: []corev1.ServicePort{{Port: 80}}}},
		svc("noports", "10.0.0.7", corev1.ServiceTypeClusterIP),
	}
	v := testPod()
	v.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "DB_SERVICE_HOST", Value: "override"}}
	h := testTenant().Pod(v, services)
	env := h.Spec.Containers[0].Env
	got := envByName(env)

	want := map[string]string{
		"DB_SERVICE_HOST":               "override", // the container's own wins
		"DB_SERVICE_PORT":               "5432",     // first port
		"DB_PORT":                       "tcp://10.0.0.5:5432",
		"DB_SERVICE_PORT_PG":            "5432",
		"DB_SERVICE_PORT_METRICS_HTTP":  "9187",
		"DB_PORT_5432_TCP":              "tcp://10.0.0.5:5432",
		"DB_PORT_5432_TCP_PROTO":        "tcp",
		"DB_PORT_5432_TCP_PORT":         "5432",
		"DB_PORT_5432_TCP_ADDR":         "10.0.0.5",
		"DB_PORT_9187_TCP":              "tcp://10.0.0.5:9187",
		"DB_PORT_9187_TCP_PROTO":        "tcp",
		"MY_CACHE_SERVICE_HOST":         "10.0.0.6",
		"MY_CACHE_SERVICE_PORT":         "6379",
		"MY_CACHE_PORT":                 "udp://10.0.0.6:6379",
		"MY_CACHE_PORT_6379_UDP":        "udp://10.0.0.6:6379",
		"MY_CACHE_PORT_6379_UDP_PROTO":  "udp",
		"MY_CACHE_PORT_6379_UDP_ADDR":   "10.0.0.6",
		"KUBERNETES_SERVICE_HOST":       "192.0.2.10",
		"KUBERNETES_PORT_443_TCP_ADDR":  "192.0.2.10",
		"KUBERNETES_SERVICE_PORT_HTTPS": "6443",
		"KUBERNETES_PORT_443_TCP_PROTO": "tcp",
		"MY_CACHE_PORT_6379_UDP_PORT":   "6379",
		"DB_PORT_9187_TCP_ADDR":         "10.0.0.5",
		"DB_PORT_9187_TCP_PORT":         "9187",
		"KUBERNETES_SERVICE_PORT":       "6443",
		"KUBERNETES_PORT":               "tcp://192.0.2.10:6443",
		"KUBERNETES_PORT_443_TCP":       "tcp://192.0.2.10:6443",
		"KUBERNETES_PORT_443_TCP_PORT":  "6443",
	}
	for k, val := range want {
		if e, ok := got[k]; !ok || e.Value != val || envCount(env, k) != 1 {
			t.Errorf("%s = %+v (present %v, count %d), want %q", k, e, ok, envCount(env, k), val)
		}
	}
	if len(env) != len(want) {
		var names []string
		for _, e := range env {
			names = append(names, e.Name)
		}
		t.Errorf("%d env vars, want %d: %v", len(env), len(want), names)
	}
	for _, e := range env {
		for _, skipped := range []string{"HEADLESS_", "EXT_", "NOPORTS_"} {
			if strings.HasPrefix(e.Name, skipped) {
				t.Errorf("env %s from a service without links", e.Name)
			}
		}
	}
	// Services are taken in name order, whatever order they were listed in.
	idx := func(name string) int {
		for i, e := range env {
			if e.Name == name {
				return i
			}
		}
		return -1
	}
	if idx("DB_SERVICE_PORT") > idx("MY_CACHE_SERVICE_HOST") {
		t.Errorf("db links after my-cache links: %+v", env)
	}
	if len(v.Spec.Containers[0].Env) != 1 {
		t.Errorf("virtual env mutated: %+v", v.Spec.Containers[0].Env)
	}
}

func TestPodServiceLinksDisabled(t *testing.T) {
	services := []*corev1.Service{svc("db", "10.0.0.5", corev1.ServiceTypeClusterIP, corev1.ServicePort{Port: 5432})}
	v := testPod()
	v.Spec.EnableServiceLinks = ptr.To(false)
	h := testTenant().Pod(v, services)
	env := envByName(h.Spec.Containers[0].Env)
	if _, ok := env["DB_SERVICE_HOST"]; ok {
		t.Errorf("enableServiceLinks=false: got DB_SERVICE_HOST")
	}
	if env["KUBERNETES_SERVICE_HOST"].Value != "192.0.2.10" {
		t.Errorf("enableServiceLinks=false: KUBERNETES_SERVICE_HOST = %+v, want the API host", env["KUBERNETES_SERVICE_HOST"])
	}
	if *h.Spec.EnableServiceLinks {
		t.Error("host enableServiceLinks = true")
	}

	// Explicitly true behaves as unset.
	v.Spec.EnableServiceLinks = ptr.To(true)
	h = testTenant().Pod(v, services)
	if envByName(h.Spec.Containers[0].Env)["DB_SERVICE_HOST"].Value != "10.0.0.5" {
		t.Error("enableServiceLinks=true: no DB_SERVICE_HOST")
	}
}

func TestPodServiceLinksDefaultKubernetes(t *testing.T) {
	// The tenant's own "kubernetes" Service in "default" is the API server:
	// its links come from the tenant's API endpoint, once.
	services := []*corev1.Service{
		{ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Namespace: "default"}, Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.1", Ports: []corev1.ServicePort{{Name: "https", Port: 443}}}},
	}
	v := testPod()
	v.Namespace = "default"
	h := testTenant().Pod(v, services)
	env := h.Spec.Containers[0].Env
	if n := envCount(env, "KUBERNETES_SERVICE_HOST"); n != 1 {
		t.Fatalf("KUBERNETES_SERVICE_HOST appears %d times", n)
	}
	if got := envByName(env)["KUBERNETES_SERVICE_HOST"].Value; got != "192.0.2.10" {
		t.Errorf("KUBERNETES_SERVICE_HOST = %q, want the tenant API host", got)
	}
}

func TestPodReferences(t *testing.T) {
	cmKey := func(n string) *corev1.EnvVarSource {
		return &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: n}}}
	}
	secKey := func(n string) *corev1.EnvVarSource {
		return &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: n}}}
	}
	tests := []struct {
		name string
		spec corev1.PodSpec
		want References
	}{
		{name: "nothing", want: References{ConfigMaps: []string{}, Secrets: []string{}}},
		{name: "image pull secret", spec: corev1.PodSpec{ImagePullSecrets: []corev1.LocalObjectReference{{Name: "reg"}, {Name: ""}}},
			want: References{ConfigMaps: []string{}, Secrets: []string{"reg"}}},
		{name: "volumes", spec: corev1.PodSpec{Volumes: []corev1.Volume{
			{VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "vcm"}}}},
			{VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "vsec"}}},
			{VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "pvc"}}},
			{VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
				{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "pcm"}}},
				{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "psec"}}},
				{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}},
			}}}},
		}}, want: References{ConfigMaps: []string{"pcm", "vcm"}, Secrets: []string{"psec", "vsec"}}},
		{name: "every container kind, deduplicated and sorted", spec: corev1.PodSpec{
			ImagePullSecrets: []corev1.LocalObjectReference{{Name: "shared"}},
			InitContainers:   []corev1.Container{{Env: []corev1.EnvVar{{Name: "A", ValueFrom: cmKey("z-init")}, {Name: "B", ValueFrom: secKey("shared")}}}},
			Containers: []corev1.Container{{
				Env: []corev1.EnvVar{{Name: "A", Value: "plain"}, {Name: "B", ValueFrom: cmKey("z-init")}, {Name: "F", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}},
				EnvFrom: []corev1.EnvFromSource{
					{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "a-from"}}},
					{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "m-from"}}},
				},
			}},
			EphemeralContainers: []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{
				Env:     []corev1.EnvVar{{Name: "S", ValueFrom: secKey("eph")}},
				EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "eph-cm"}}}},
			}}},
		}, want: References{ConfigMaps: []string{"a-from", "eph-cm", "z-init"}, Secrets: []string{"eph", "m-from", "shared"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := PodReferences(&tt.spec); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("PodReferences = %+v, want %+v", got, tt.want)
			}
		})
	}
}
