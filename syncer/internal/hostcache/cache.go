// Package hostcache holds a tenant's host objects as the bus reports them:
// the shard's only view of the host (it never watches the host itself).
// Objects are trimmed to what the sync needs, to keep memory per synced
// object small.
package hostcache

import (
	"encoding/json"
	"fmt"
	"strconv"
	"sync"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kplex.dev/api/bus"
	"kplex.dev/syncer/internal/natsbus"
)

// Resources the relay publishes.
const (
	Pods       = "pods"
	PodTokens  = "podtokens"
	Services   = "services"
	Endpoints  = "endpoints"
	ConfigMaps = "configmaps"
	Secrets    = "secrets"
	Nodes      = "nodes"
	// NetworkPolicies and PodDisruptionBudgets are published as metadata.
	NetworkPolicies      = "networkpolicies"
	PodDisruptionBudgets = "poddisruptionbudgets"
	// Ingresses and PersistentVolumeClaims are published whole (their
	// status comes back).
	Ingresses              = "ingresses"
	PersistentVolumeClaims = "persistentvolumeclaims"
	// StorageClasses and IngressClasses are shared, like Nodes: tenants
	// that import them get read-only copies.
	StorageClasses = "storageclasses"
	IngressClasses = "ingressclasses"
)

// Shared reports whether a resource is host-wide (published for every
// shard under bus.SharedTenant) rather than a tenant's.
func Shared(resource string) bool {
	return resource == Nodes || resource == StorageClasses || resource == IngressClasses
}

// Cache is the last known host state of one tenant (or of the shared host
// nodes). Safe for concurrent use.
type Cache struct {
	mu   sync.RWMutex
	objs map[string]map[string]metav1.Object // resource -> ns/name
}

// New returns an empty cache.
func New() *Cache { return &Cache{objs: map[string]map[string]metav1.Object{}} }

// Apply records a delivery; it returns an error for an object that does
// not decode (the delivery is then ignored).
func (c *Cache) Apply(d natsbus.Delivery) error {
	id := d.Key.Namespace + "/" + d.Key.Name
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.objs[d.Key.Resource]
	if m == nil {
		m = map[string]metav1.Object{}
		c.objs[d.Key.Resource] = m
	}
	if d.Message.Type == bus.Deleted {
		delete(m, id)
		return nil
	}
	obj, err := decode(d.Key.Resource, d.Message.Object)
	if err != nil {
		return fmt.Errorf("host %s %s: %w", d.Key.Resource, id, err)
	}
	if old, ok := m[id]; ok && old.GetUID() == obj.GetUID() && newer(old.GetResourceVersion(), obj.GetResourceVersion()) {
		return nil // an older state of the same object (two relays overlapping)
	}
	m[id] = obj
	return nil
}

// newer reports whether resourceVersion a is after b (both from one host
// etcd; unparseable versions are never called newer).
func newer(a, b string) bool {
	x, err1 := strconv.ParseUint(a, 10, 64)
	y, err2 := strconv.ParseUint(b, 10, 64)
	return err1 == nil && err2 == nil && x > y
}

// Get returns the host object of a virtual (namespace, name), or nil.
func (c *Cache) Get(resource, ns, name string) metav1.Object {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.objs[resource][ns+"/"+name]
}

// Pod returns the host pod of a virtual pod, or nil.
func (c *Cache) Pod(ns, name string) *corev1.Pod {
	p, _ := c.Get(Pods, ns, name).(*corev1.Pod)
	return p
}

// Service returns the host Service of a virtual Service, or nil.
func (c *Cache) Service(ns, name string) *corev1.Service {
	s, _ := c.Get(Services, ns, name).(*corev1.Service)
	return s
}

// StorageClass returns a host StorageClass, or nil.
func (c *Cache) StorageClass(name string) *storagev1.StorageClass {
	o, _ := c.Get(StorageClasses, "", name).(*storagev1.StorageClass)
	return o
}

// IngressClass returns a host IngressClass, or nil.
func (c *Cache) IngressClass(name string) *networkingv1.IngressClass {
	o, _ := c.Get(IngressClasses, "", name).(*networkingv1.IngressClass)
	return o
}

// Node returns a host node, or nil.
func (c *Cache) Node(name string) *corev1.Node {
	n, _ := c.Get(Nodes, "", name).(*corev1.Node)
	return n
}

// Len is the number of objects of a resource.
func (c *Cache) Len(resource string) int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.objs[resource])
}

// Names lists the virtual "ns/name" of every object of a resource.
func (c *Cache) Names(resource string) []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]string, 0, len(c.objs[resource]))
	for k := range c.objs[resource] {
		out = append(out, k)
	}
	return out
}

func decode(resource string, raw json.RawMessage) (metav1.Object, error) {
	var obj metav1.Object
	switch resource {
	case Pods:
		p := &corev1.Pod{}
		if err := json.Unmarshal(raw, p); err != nil {
			return nil, err
		}
		trimPod(p)
		obj = p
	case Services:
		obj = &corev1.Service{}
	case Nodes:
		obj = &corev1.Node{}
	case Ingresses:
		obj = &networkingv1.Ingress{}
	case PersistentVolumeClaims:
		obj = &corev1.PersistentVolumeClaim{}
	case StorageClasses:
		obj = &storagev1.StorageClass{}
	case IngressClasses:
		obj = &networkingv1.IngressClass{}
	case ConfigMaps, Secrets, Endpoints, PodTokens, NetworkPolicies, PodDisruptionBudgets:
		obj = &metav1.PartialObjectMetadata{}
	default:
		return nil, fmt.Errorf("unknown resource %q", resource)
	}
	if _, ok := obj.(*corev1.Pod); !ok {
		if err := json.Unmarshal(raw, obj); err != nil {
			return nil, err
		}
	}
	obj.SetManagedFields(nil)
	if n, ok := obj.(*corev1.Node); ok {
		n.Status.Images = nil
	}
	return obj, nil
}

// trimPod keeps what the sync compares and mirrors: identity, the fields
// it may update (images, resources, deadline, tolerations), the node, and
// the status.
func trimPod(p *corev1.Pod) {
	spec := corev1.PodSpec{
		NodeName:              p.Spec.NodeName,
		ActiveDeadlineSeconds: p.Spec.ActiveDeadlineSeconds,
		Tolerations:           p.Spec.Tolerations,
	}
	keep := func(cs []corev1.Container) []corev1.Container {
		out := make([]corev1.Container, len(cs))
		for i, c := range cs {
			out[i] = corev1.Container{Name: c.Name, Image: c.Image, Resources: c.Resources}
		}
		return out
	}
	spec.Containers = keep(p.Spec.Containers)
	spec.InitContainers = keep(p.Spec.InitContainers)
	p.Spec = spec
	p.ManagedFields = nil
}
