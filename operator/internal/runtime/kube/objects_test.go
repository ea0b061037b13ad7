package kube

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"kplex.dev/operator/internal/runtime"
	"kplex.dev/operator/internal/tenantpki"
)

func testTenant() runtime.Tenant {
	pki := map[string][]byte{}
	for _, k := range []string{"ca.crt", "ca.key", "apiserver.crt", "apiserver.key", "controller-manager.crt", "controller-manager.key",
		"scheduler.crt", "scheduler.key", "datastore-client.crt", "datastore-client.key", "sa.key", "sa.pub"} {
		pki[k] = []byte("pem of " + k)
	}
	return runtime.Tenant{Name: "team-a", PKI: pki, DatastoreEndpoints: []string{"https://127.0.0.1:2379"},
		DatastoreServerCA: []byte("ds ca"), ServiceCIDR: "10.96.0.0/16"}
}

var images = Images{APIServer: "reg/apiserver:1", ControllerManager: "reg/cm:1", Scheduler: "reg/sched:1", PullPolicy: corev1.PullIfNotPresent}

func TestComponents(t *testing.T) {
	tests := []struct {
		name      string
		mutate    func(*runtime.Tenant, *Images)
		component string
		wantArgs  []string
		noArgs    []string
		wantErr   string
	}{
		{name: "apiserver listens on the pod", component: runtime.APIServer,
			wantArgs: []string{"--bind-address=0.0.0.0", "--advertise-address=$(POD_IP)", "--secure-port=6443",
				"--etcd-servers=https://datastore.kplex-system:2379", "--etcd-cafile=/etc/kplex/datastore-ca.crt"}},
		{name: "one controller manager: no election", component: runtime.ControllerManager,
			wantArgs: []string{"--leader-elect=false", "--kubeconfig=/etc/kplex/controller-manager.kubeconfig", "--bind-address=0.0.0.0"}},
		{name: "replicated controller manager elects", component: runtime.ControllerManager,
			mutate:   func(t *runtime.Tenant, _ *Images) { t.ControllerManager.Replicas = 2 },
			wantArgs: []string{"--leader-elect=true"}},
		{name: "no scheduler unless enabled", component: runtime.Scheduler},
		{name: "scheduler when enabled", component: runtime.Scheduler,
			mutate:   func(t *runtime.Tenant, _ *Images) { t.Scheduler = true },
			wantArgs: []string{"--kubeconfig=/etc/kplex/scheduler.kubeconfig", "--leader-elect=false"}},
		{name: "scheduler without an image", component: runtime.Scheduler,
			mutate:  func(t *runtime.Tenant, i *Images) { t.Scheduler, i.Scheduler = true, "" },
			wantErr: "--scheduler-image"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tn, img := testTenant(), images
			if tt.mutate != nil {
				tt.mutate(&tn, &img)
			}
			cs, err := components(tn, img, []string{"https://datastore.kplex-system:2379"})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var c *component
			for i := range cs {
				if cs[i].name == tt.component {
					c = &cs[i]
				}
			}
			if tt.wantArgs == nil {
				if c != nil {
					t.Fatalf("unexpected %s", tt.component)
				}
				return
			}
			if c == nil {
				t.Fatalf("no %s among %d components", tt.component, len(cs))
			}
			joined := strings.Join(c.args, " ")
			for _, w := range tt.wantArgs {
				if !strings.Contains(joined, w) {
					t.Errorf("args lack %q:\n%s", w, joined)
				}
			}
		})
	}
}

// TestMounts: each component mounts only the keys it needs; the CA key
// only reaches the controller manager (it signs CSRs).
func TestMounts(t *testing.T) {
	tn := testTenant()
	tn.Scheduler = true
	cs, err := components(tn, images, tn.DatastoreEndpoints)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{runtime.APIServer: false, runtime.ControllerManager: true, runtime.Scheduler: false}
	for _, c := range cs {
		d := deployment(tn.Name, c, "h")
		var keys []string
		for _, src := range d.Spec.Template.Spec.Volumes[0].Projected.Sources {
			for _, it := range src.Secret.Items {
				keys = append(keys, src.Secret.Name+"/"+it.Key)
			}
		}
		if got := strings.Contains(strings.Join(keys, " "), PKISecret+"/"+tenantpki.CA+".key"); got != want[c.name] {
			t.Errorf("%s mounts the CA key: %v, want %v (%v)", c.name, got, want[c.name], keys)
		}
		// Every file an argument names is mounted.
		for _, a := range c.args {
			if _, path, ok := strings.Cut(a, "="); ok && strings.HasPrefix(path, mountDir+"/") {
				key := strings.TrimPrefix(path, mountDir+"/")
				if !strings.Contains(" "+strings.Join(keys, " ")+" ", "/"+key+" ") {
					t.Errorf("%s: %s names %s, which is not mounted (%v)", c.name, a, key, keys)
				}
			}
		}
		ctr := d.Spec.Template.Spec.Containers[0]
		if ctr.Image == "" || ctr.ImagePullPolicy != corev1.PullIfNotPresent || ctr.ReadinessProbe.HTTPGet.Scheme != corev1.URISchemeHTTPS {
			t.Errorf("%s container: %+v", c.name, ctr)
		}
		if d.Spec.Template.Spec.AutomountServiceAccountToken == nil || *d.Spec.Template.Spec.AutomountServiceAccountToken {
			t.Errorf("%s mounts a host service-account token", c.name)
		}
	}
}

// TestInputsHash: a change of a file a component mounts rolls it; a
// change of another component's file does not.
func TestInputsHash(t *testing.T) {
	tn := testTenant()
	cs, err := components(tn, images, tn.DatastoreEndpoints)
	if err != nil {
		t.Fatal(err)
	}
	api, cm := cs[0], cs[1]
	extra, err := files(tn)
	if err != nil {
		t.Fatal(err)
	}
	secrets := func(pki map[string][]byte) map[string]map[string][]byte {
		return map[string]map[string][]byte{PKISecret: pki, FilesSecret: extra}
	}
	rotated := map[string][]byte{}
	for k, v := range tn.PKI {
		rotated[k] = v
	}
	rotated["apiserver.crt"] = []byte("renewed")
	if inputsHash(api, secrets(tn.PKI)) == inputsHash(api, secrets(rotated)) {
		t.Error("a renewed serving certificate does not roll the apiserver")
	}
	if inputsHash(cm, secrets(tn.PKI)) != inputsHash(cm, secrets(rotated)) {
		t.Error("the apiserver's certificate rolls the controller manager")
	}
	if inputsHash(api, secrets(tn.PKI)) != inputsHash(api, secrets(tn.PKI)) {
		t.Error("hash is not stable")
	}
}

func TestServiceAndPDB(t *testing.T) {
	s := service("team-a", corev1.ServiceTypeClusterIP)
	if s.Namespace != "kplex-team-a" || s.Spec.Ports[0].Port != 443 || s.Spec.Selector["kplex.dev/component"] != "apiserver" {
		t.Errorf("service: %+v", s)
	}
	if _, managed := s.Labels["kplex.dev/managed"]; managed {
		t.Error("control-plane objects must not carry the syncer's managed label")
	}
	p := pdb("team-a", runtime.ControllerManager)
	if p.Spec.MaxUnavailable.IntValue() != 1 || p.Spec.Selector.MatchLabels["kplex.dev/tenant"] != "team-a" {
		t.Errorf("pdb: %+v", p.Spec)
	}
}
