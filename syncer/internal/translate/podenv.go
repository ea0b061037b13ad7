package translate

import (
	"net"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// serviceEnv is the environment a kubelet derives from the Services of a
// pod's namespace (service links), computed from the VIRTUAL Services: a
// host kubelet would see the translated names.
func serviceEnv(services []*corev1.Service) []corev1.EnvVar {
	sorted := append([]*corev1.Service(nil), services...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	var env []corev1.EnvVar
	for _, s := range sorted {
		ip := s.Spec.ClusterIP
		if ip == "" || ip == corev1.ClusterIPNone || len(s.Spec.Ports) == 0 {
			continue
		}
		if s.Namespace == "default" && s.Name == "kubernetes" {
			continue // apiEnv
		}
		prefix := strings.ToUpper(strings.ReplaceAll(s.Name, "-", "_"))
		first := s.Spec.Ports[0]
		env = append(env,
			corev1.EnvVar{Name: prefix + "_SERVICE_HOST", Value: ip},
			corev1.EnvVar{Name: prefix + "_SERVICE_PORT", Value: strconv.Itoa(int(first.Port))},
			corev1.EnvVar{Name: prefix + "_PORT", Value: portURL(first, ip)},
		)
		for _, p := range s.Spec.Ports {
			if p.Name != "" {
				env = append(env, corev1.EnvVar{Name: prefix + "_SERVICE_PORT_" + strings.ToUpper(strings.ReplaceAll(p.Name, "-", "_")), Value: strconv.Itoa(int(p.Port))})
			}
			proto := string(p.Protocol)
			if proto == "" {
				proto = "TCP"
			}
			base := prefix + "_PORT_" + strconv.Itoa(int(p.Port)) + "_" + strings.ToUpper(proto)
			env = append(env,
				corev1.EnvVar{Name: base, Value: portURL(p, ip)},
				corev1.EnvVar{Name: base + "_PROTO", Value: strings.ToLower(proto)},
				corev1.EnvVar{Name: base + "_PORT", Value: strconv.Itoa(int(p.Port))},
				corev1.EnvVar{Name: base + "_ADDR", Value: ip},
			)
		}
	}
	return env
}

func portURL(p corev1.ServicePort, ip string) string {
	proto := strings.ToLower(string(p.Protocol))
	if proto == "" {
		proto = "tcp"
	}
	return proto + "://" + hostPort(ip, strconv.Itoa(int(p.Port)))
}

func hostPort(h, p string) string { return net.JoinHostPort(h, p) }

// References are the ConfigMaps and Secrets (virtual names, in the pod's
// namespace) a pod needs on the host before it can start.
type References struct {
	ConfigMaps, Secrets []string
}

// PodReferences lists what a pod refers to: volumes, projected sources,
// env and envFrom of every container kind, image pull secrets.
func PodReferences(spec *corev1.PodSpec) References {
	cms, secrets := map[string]bool{}, map[string]bool{}
	for _, s := range spec.ImagePullSecrets {
		secrets[s.Name] = true
	}
	for _, v := range spec.Volumes {
		switch {
		case v.ConfigMap != nil:
			cms[v.ConfigMap.Name] = true
		case v.Secret != nil:
			secrets[v.Secret.SecretName] = true
		case v.Projected != nil:
			for _, s := range v.Projected.Sources {
				if s.ConfigMap != nil {
					cms[s.ConfigMap.Name] = true
				}
				if s.Secret != nil {
					secrets[s.Secret.Name] = true
				}
			}
		}
	}
	visit := func(c *corev1.Container) {
		for _, e := range c.Env {
			if e.ValueFrom == nil {
				continue
			}
			if r := e.ValueFrom.ConfigMapKeyRef; r != nil {
				cms[r.Name] = true
			}
			if r := e.ValueFrom.SecretKeyRef; r != nil {
				secrets[r.Name] = true
			}
		}
		for _, e := range c.EnvFrom {
			if e.ConfigMapRef != nil {
				cms[e.ConfigMapRef.Name] = true
			}
			if e.SecretRef != nil {
				secrets[e.SecretRef.Name] = true
			}
		}
	}
	for i := range spec.InitContainers {
		visit(&spec.InitContainers[i])
	}
	for i := range spec.Containers {
		visit(&spec.Containers[i])
	}
	for i := range spec.EphemeralContainers {
		c := corev1.Container(spec.EphemeralContainers[i].EphemeralContainerCommon)
		visit(&c)
	}
	return References{ConfigMaps: sortedKeys(cms), Secrets: sortedKeys(secrets)}
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		if k != "" {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}
