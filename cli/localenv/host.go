package localenv

import (
	"context"
	"net/http"
	"strconv"
	"time"

	apiservertenant "kplex.dev/apiserver/tenant"
	cmtenant "kplex.dev/controller-manager/tenant"
)

func (e *env) port(role string) string { return strconv.Itoa(e.state.Ports[role]) }

// hostComponents are the host control plane: etcd, apiserver, controller
// manager and scheduler.
func (e *env) hostComponents() []component {
	l, dir := e.layout, e.layout.HostPKI()
	ca := pkiFile(dir, hostCA, "crt")
	crt := func(n string) string { return pkiFile(dir, n, "crt") }
	key := func(n string) string { return pkiFile(dir, n, "key") }
	etcdURL := "https://127.0.0.1:" + e.port(PortEtcdClient)
	peerURL := "http://127.0.0.1:" + e.port(PortEtcdPeer)
	admin := func() (*http.Client, error) { return tlsClient(ca, crt(certAdmin), key(certAdmin)) }
	anon := func() (*http.Client, error) { return tlsClient(ca, "", "") }

	return []component{
		{
			name:    "etcd",
			ports:   []string{PortEtcdClient, PortEtcdPeer},
			prepare: func(context.Context) error { return e.prepareHostPKI() },
			command: func() (string, []string, []string, error) {
				return e.bin("etcd"), []string{
					"--name=kplex-host",
					"--data-dir=" + l.EtcdData(),
					"--listen-client-urls=" + etcdURL,
					"--advertise-client-urls=" + etcdURL,
					"--listen-peer-urls=" + peerURL,
					"--initial-advertise-peer-urls=" + peerURL,
					"--initial-cluster=kplex-host=" + peerURL,
					"--client-cert-auth",
					"--trusted-ca-file=" + ca,
					"--cert-file=" + crt(certEtcdServer),
					"--key-file=" + key(certEtcdServer),
					"--quota-backend-bytes=" + strconv.Itoa(4<<30),
					"--log-level=warn",
				}, nil, nil
			},
			ready: httpProbe(func() (*http.Client, error) {
				return tlsClient(ca, crt(certEtcdClient), key(certEtcdClient))
			}, etcdURL+"/health", `"health":"true"`),
			readyTimeout: 60 * time.Second,
		},
		{
			name:  "host-apiserver",
			ports: []string{PortHostAPIServer},
			command: func() (string, []string, []string, error) {
				return e.bin("kplex-apiserver"), append([]string{
					"--bind-address=127.0.0.1",
					"--advertise-address=127.0.0.1",
					"--secure-port=" + e.port(PortHostAPIServer),
					// A loopback advertise address cannot be an endpoint.
					"--endpoint-reconciler-type=none",
					"--etcd-servers=" + etcdURL,
					"--etcd-cafile=" + ca,
					"--etcd-certfile=" + crt(certEtcdClient),
					"--etcd-keyfile=" + key(certEtcdClient),
					"--tls-cert-file=" + crt(certAPIServer),
					"--tls-private-key-file=" + key(certAPIServer),
					"--client-ca-file=" + ca,
					"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
					"--service-account-key-file=" + pkiFile(dir, serviceAccountKP, "pub"),
					"--service-account-signing-key-file=" + pkiFile(dir, serviceAccountKP, "key"),
					"--service-cluster-ip-range=" + e.state.ServiceCIDR,
					"--authorization-mode=Node,RBAC",
					"--allow-privileged=true",
					"--kubelet-preferred-address-types=InternalIP",
					"--profiling=false",
				}, apiservertenant.FrontProxyFlags(crt(frontProxyCA), crt(frontProxyClient), key(frontProxyClient))...), nil, nil
			},
			ready:        httpProbe(admin, "https://127.0.0.1:"+e.port(PortHostAPIServer)+"/readyz", "ok"),
			readyTimeout: 120 * time.Second,
		},
		{
			name:  "host-controller-manager",
			ports: []string{PortHostControllerMgr},
			command: func() (string, []string, []string, error) {
				kc := l.HostComponentKubeconfig("controller-manager")
				return e.bin("kplex-controller-manager"), []string{
					"--kubeconfig=" + kc,
					"--authentication-kubeconfig=" + kc,
					"--authorization-kubeconfig=" + kc,
					"--bind-address=127.0.0.1",
					"--secure-port=" + e.port(PortHostControllerMgr),
					"--tls-cert-file=" + crt("controller-manager-serve"),
					"--tls-private-key-file=" + key("controller-manager-serve"),
					"--cluster-name=kplex-host",
					"--root-ca-file=" + ca,
					"--service-account-private-key-file=" + pkiFile(dir, serviceAccountKP, "key"),
					"--cluster-signing-cert-file=" + ca,
					"--cluster-signing-key-file=" + key(hostCA),
					"--use-service-account-credentials=true",
					// The same client limits as the tenants' controller
					// managers, so neither side's limit hides the other's.
					"--kube-api-qps=" + strconv.Itoa(cmtenant.KubeAPIQPS),
					"--kube-api-burst=" + strconv.Itoa(cmtenant.KubeAPIBurst),
					// Nodes carry their spec.podCIDR from the node provider.
					"--allocate-node-cidrs=false",
					"--leader-elect=false",
					"--profiling=false",
				}, nil, nil
			},
			ready: allOf(
				httpProbe(anon, "https://127.0.0.1:"+e.port(PortHostControllerMgr)+"/healthz", "ok"),
				defaultServiceAccountProbe(l.HostKubeconfig()),
			),
			readyTimeout: 60 * time.Second,
		},
		{
			name:  "host-scheduler",
			ports: []string{PortHostScheduler},
			command: func() (string, []string, []string, error) {
				kc := l.HostComponentKubeconfig("scheduler")
				return e.bin("kplex-scheduler"), []string{
					"--kubeconfig=" + kc,
					"--authentication-kubeconfig=" + kc,
					"--authorization-kubeconfig=" + kc,
					"--bind-address=127.0.0.1",
					"--secure-port=" + e.port(PortHostScheduler),
					"--tls-cert-file=" + crt("scheduler-serve"),
					"--tls-private-key-file=" + key("scheduler-serve"),
					"--leader-elect=false",
					"--profiling=false",
				}, nil, nil
			},
			ready:        httpProbe(anon, "https://127.0.0.1:"+e.port(PortHostScheduler)+"/healthz", "ok"),
			readyTimeout: 60 * time.Second,
		},
	}
}
