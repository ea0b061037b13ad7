package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"kplex.dev/cli/supervise"
	"kplex.dev/e2e/framework"
)

// runLikeKubelet runs a control-plane Deployment's container as a local
// process, the way a kubelet would run its pod: the projected Secret
// files written to a directory, $(VAR) references expanded, the binary
// the container's command names. port replaces the container's https
// port. KWOK runs the pod only on paper; this proves the spec itself
// serves.
func runLikeKubelet(t *testing.T, env *framework.Env, host kubernetes.Interface, ns, deployment string, port int) *framework.Process {
	t.Helper()
	ctx := context.Background()
	d, err := host.AppsV1().Deployments(ns).Get(ctx, deployment, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	spec := d.Spec.Template.Spec
	for _, v := range spec.Volumes {
		if v.Projected == nil {
			continue
		}
		for _, src := range v.Projected.Sources {
			s, err := host.CoreV1().Secrets(ns).Get(ctx, src.Secret.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for _, it := range src.Secret.Items {
				data, ok := s.Data[it.Key]
				if !ok {
					t.Fatalf("%s mounts %s/%s, which does not exist", deployment, src.Secret.Name, it.Key)
				}
				if err := os.WriteFile(filepath.Join(dir, it.Path), data, 0o600); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	ctr := spec.Containers[0]
	mount := ctr.VolumeMounts[0].MountPath
	vars := map[string]string{"POD_IP": "127.0.0.1"}
	var envs []string
	for _, e := range ctr.Env {
		if e.ValueFrom == nil {
			envs = append(envs, e.Name+"="+e.Value)
		}
	}
	containerPort := strconv.Itoa(int(ctr.Ports[0].ContainerPort))
	var args []string
	for _, a := range ctr.Args {
		for k, v := range vars {
			a = strings.ReplaceAll(a, "$("+k+")", v)
		}
		a = strings.ReplaceAll(a, mount+"/", dir+"/")
		if a == "--secure-port="+containerPort {
			a = "--secure-port=" + strconv.Itoa(port)
		}
		args = append(args, a)
	}
	p := framework.Run(t, supervise.Spec{
		Name: "pod-" + deployment, Path: filepath.Join(framework.BinDir(t), ctr.Command[0]), Args: args, Env: envs, DieWithParent: true,
		LogPath: filepath.Join(env.Dir, "logs", "pod-"+deployment+".log"), PidPath: filepath.Join(dir, "pod.pid"),
	})
	return p
}

// startConnect runs `kplexctl connect NAME --port-forward -o path` in the
// background; stop sends it Ctrl-C and returns its output.
func startConnect(t *testing.T, env *framework.Env, name, path string) (stop func() string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(framework.BinDir(t), "kplexctl"), "connect", name, "--port-forward", "-o", path,
		"--dir", env.Dir, "--kubeconfig", env.Layout.HostKubeconfig())
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	stopped := false
	stop = func() string {
		if !stopped {
			stopped = true
			_ = cmd.Process.Signal(os.Interrupt)
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
		}
		return out.String()
	}
	t.Cleanup(func() { stop() })
	return stop
}
