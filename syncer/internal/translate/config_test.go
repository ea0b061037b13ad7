package translate

import (
	"reflect"
	"regexp"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"kplex.dev/api/naming"
)

var hashRE = regexp.MustCompile(`^[0-9a-f]{32}$`)

func TestConfigMap(t *testing.T) {
	base := func() *corev1.ConfigMap {
		return &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: "cfg", Namespace: "shop", UID: "cm-uid", Labels: map[string]string{"app": "web"}},
			Data:       map[string]string{"a": "1", "b": "2"},
			BinaryData: map[string][]byte{"bin": {0, 1, 2}},
			Immutable:  ptr.To(true),
		}
	}
	v := base()
	h := testTenant().ConfigMap(v)
	if h.Name != "cfg-shop-4" || h.Namespace != "kplex-acme" || VirtualUID(h) != "cm-uid" || h.Labels[naming.LabelTenant] != "acme" {
		t.Errorf("host configmap meta = %+v", h.ObjectMeta)
	}
	if !reflect.DeepEqual(h.Data, v.Data) || !reflect.DeepEqual(h.BinaryData, v.BinaryData) || h.Immutable == nil || !*h.Immutable {
		t.Errorf("content = %v %v %v", h.Data, h.BinaryData, h.Immutable)
	}
	hash := ContentHash(h.Annotations)
	if !hashRE.MatchString(hash) || hash != h.Annotations[naming.AnnotationContentHash] {
		t.Fatalf("content hash = %q", hash)
	}

	tests := []struct {
		name    string
		change  func(*corev1.ConfigMap)
		changed bool
	}{
		{"same content", func(*corev1.ConfigMap) {}, false},
		{"labels and annotations", func(c *corev1.ConfigMap) { c.Labels["x"] = "y"; c.Annotations = map[string]string{"n": "m"} }, false},
		{"map rebuilt in another order", func(c *corev1.ConfigMap) { c.Data = map[string]string{"b": "2", "a": "1"} }, false},
		{"value changed", func(c *corev1.ConfigMap) { c.Data["a"] = "10" }, true},
		{"key added", func(c *corev1.ConfigMap) { c.Data["c"] = "" }, true},
		{"key removed", func(c *corev1.ConfigMap) { delete(c.Data, "b") }, true},
		{"key renamed", func(c *corev1.ConfigMap) { delete(c.Data, "b"); c.Data["B"] = "2" }, true},
		{"value moved between keys", func(c *corev1.ConfigMap) { c.Data = map[string]string{"a": "12", "b": ""} }, true},
		{"binary changed", func(c *corev1.ConfigMap) { c.BinaryData["bin"] = []byte{0, 1, 3} }, true},
		{"data moved to binary", func(c *corev1.ConfigMap) { delete(c.Data, "a"); c.BinaryData["a"] = []byte("1") }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base()
			tt.change(c)
			got := ContentHash(testTenant().ConfigMap(c).Annotations)
			if (got != hash) != tt.changed {
				t.Errorf("hash %q vs %q: changed = %v, want %v", got, hash, got != hash, tt.changed)
			}
		})
	}
}

func TestSecret(t *testing.T) {
	base := func(typ corev1.SecretType) *corev1.Secret {
		return &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "creds", Namespace: "shop", UID: "s-uid"},
			Data:       map[string][]byte{"user": []byte("admin"), "pass": []byte("hunter2")},
			Type:       typ,
		}
	}
	tests := []struct {
		in, want corev1.SecretType
	}{
		{corev1.SecretTypeServiceAccountToken, corev1.SecretTypeOpaque},
		{corev1.SecretTypeOpaque, corev1.SecretTypeOpaque},
		{corev1.SecretTypeTLS, corev1.SecretTypeTLS},
		{corev1.SecretTypeDockerConfigJson, corev1.SecretTypeDockerConfigJson},
		{"", ""},
	}
	for _, tt := range tests {
		v := base(tt.in)
		h := testTenant().Secret(v)
		if h.Type != tt.want {
			t.Errorf("type %q -> %q, want %q", tt.in, h.Type, tt.want)
		}
		if v.Type != tt.in {
			t.Errorf("virtual type mutated to %q", v.Type)
		}
		if h.Name != "creds-shop-4" || h.Namespace != "kplex-acme" || !reflect.DeepEqual(h.Data, v.Data) {
			t.Errorf("host secret = %s/%s %v", h.Namespace, h.Name, h.Data)
		}
		if !hashRE.MatchString(ContentHash(h.Annotations)) {
			t.Errorf("content hash = %q", ContentHash(h.Annotations))
		}
	}

	hash := func(s *corev1.Secret) string { return ContentHash(testTenant().Secret(s).Annotations) }
	ref := hash(base(corev1.SecretTypeOpaque))
	same := base(corev1.SecretTypeOpaque)
	same.Labels = map[string]string{"x": "y"}
	if hash(same) != ref {
		t.Error("hash changed with labels only")
	}
	changed := base(corev1.SecretTypeOpaque)
	changed.Data["pass"] = []byte("hunter3")
	if hash(changed) == ref {
		t.Error("hash unchanged after a data change")
	}
	if hash(base(corev1.SecretTypeTLS)) == ref {
		t.Error("hash unchanged after a type change")
	}
	// What the shard records equals what the relay computes from the host
	// copy, so an untouched copy never looks drifted.
	h := testTenant().Secret(base(corev1.SecretTypeServiceAccountToken))
	if HashSecret(h) != ContentHash(h.Annotations) {
		t.Error("relay's hash of the host copy differs from the recorded one")
	}
	h.Data["pass"] = []byte("changed on the host")
	if HashSecret(h) == ContentHash(h.Annotations) {
		t.Error("a host-side change does not show in the hash")
	}
}

func TestEndpoints(t *testing.T) {
	base := func() *corev1.Endpoints {
		return &corev1.Endpoints{
			ObjectMeta: metav1.ObjectMeta{Name: "ext", Namespace: "shop", UID: "ep-uid", Labels: map[string]string{
				"endpointslice.kubernetes.io/skip-mirror": "true", "app": "ext",
			}},
			Subsets: []corev1.EndpointSubset{{
				Addresses: []corev1.EndpointAddress{{IP: "10.9.0.1", NodeName: ptr.To("node-1"),
					TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: "shop", Name: "web-0", UID: types.UID("p")}}},
				NotReadyAddresses: []corev1.EndpointAddress{{IP: "10.9.0.2", NodeName: ptr.To("node-2"),
					TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: "shop", Name: "web-1"}}},
				Ports: []corev1.EndpointPort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}},
			}},
		}
	}
	v := base()
	h := testTenant().Endpoints(v)
	if h.Name != "ext-shop-4" || h.Namespace != "kplex-acme" {
		t.Errorf("host endpoints = %s/%s", h.Namespace, h.Name)
	}
	if _, ok := h.Labels["endpointslice.kubernetes.io/skip-mirror"]; ok || h.Labels["app"] != "ext" {
		t.Errorf("labels = %v, want skip-mirror dropped", h.Labels)
	}
	want := []corev1.EndpointSubset{{
		Addresses:         []corev1.EndpointAddress{{IP: "10.9.0.1"}},
		NotReadyAddresses: []corev1.EndpointAddress{{IP: "10.9.0.2"}},
		Ports:             []corev1.EndpointPort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}},
	}}
	if !reflect.DeepEqual(h.Subsets, want) {
		t.Errorf("subsets = %+v, want %+v", h.Subsets, want)
	}
	if !reflect.DeepEqual(v, base()) {
		t.Error("virtual endpoints mutated")
	}

	hash := ContentHash(h.Annotations)
	if !hashRE.MatchString(hash) {
		t.Fatalf("content hash = %q", hash)
	}
	refsOnly := base()
	refsOnly.Subsets[0].Addresses[0].TargetRef.Name = "web-9"
	refsOnly.Subsets[0].Addresses[0].NodeName = ptr.To("node-9")
	if got := ContentHash(testTenant().Endpoints(refsOnly).Annotations); got != hash {
		t.Errorf("hash changed with dropped fields only: %q vs %q", got, hash)
	}
	moved := base()
	moved.Subsets[0].Addresses[0].IP = "10.9.0.3"
	if got := ContentHash(testTenant().Endpoints(moved).Annotations); got == hash {
		t.Error("hash unchanged after an address change")
	}
	port := base()
	port.Subsets[0].Ports[0].Port = 81
	if got := ContentHash(testTenant().Endpoints(port).Annotations); got == hash {
		t.Error("hash unchanged after a port change")
	}
}
