package process

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	apiservertenant "kplex.dev/apiserver/tenant"
	"kplex.dev/cli/kubeconfig"
	"kplex.dev/cli/ports"
	cmtenant "kplex.dev/controller-manager/tenant"
	"kplex.dev/operator/internal/runtime"
	"kplex.dev/operator/internal/tenantpki"
	schedtenant "kplex.dev/scheduler/tenant"
)

// Ports are a tenant's reserved ports.
type Ports struct {
	APIServer  int `json:"apiserver"`
	Controller int `json:"controllerManager"`
	Scheduler  int `json:"scheduler"`
}

// ports returns the tenant's reservation, making one on first use that
// collides with no other tenant's.
func (r *Runtime) ports(tenant string) (Ports, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	path := filepath.Join(r.tenantDir(tenant), "ports.json")
	var p Ports
	b, err := os.ReadFile(path)
	if err == nil {
		if err := json.Unmarshal(b, &p); err != nil || p.APIServer == 0 {
			return Ports{}, fmt.Errorf("tenant %s: %s is damaged (%v); remove it to reserve new ports", tenant, path, err)
		}
		return p, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return Ports{}, fmt.Errorf("tenant %s: %w", tenant, err)
	}
	taken := map[int]bool{}
	others, _ := filepath.Glob(filepath.Join(r.Dir, "*", "ports.json"))
	for _, o := range others {
		var q Ports
		if b, err := os.ReadFile(o); err == nil && json.Unmarshal(b, &q) == nil {
			taken[q.APIServer], taken[q.Controller], taken[q.Scheduler] = true, true, true
		}
	}
	var free []int
	for len(free) < 3 {
		got, err := ports.Free(3)
		if err != nil {
			return Ports{}, fmt.Errorf("tenant %s: reserve ports: %w", tenant, err)
		}
		for _, g := range got {
			if !taken[g] && !slices.Contains(free, g) && len(free) < 3 {
				free = append(free, g)
			}
		}
	}
	p = Ports{APIServer: free[0], Controller: free[1], Scheduler: free[2]}
	b, _ = json.Marshal(p)
	if err := os.MkdirAll(r.tenantDir(tenant), 0o700); err != nil {
		return Ports{}, fmt.Errorf("tenant %s: %w", tenant, err)
	}
	return p, writeAtomic(path, b, 0o644)
}

// command is one component's process.
type command struct {
	component, binary string
	args, env         []string
	limits            []string // LimitsEnv, also in env
	stamp             string   // hash of everything the process reads at start
}

// commands writes the tenant's files and returns its components' commands.
func (r *Runtime) commands(t runtime.Tenant, p Ports) ([]command, error) {
	dir := filepath.Join(r.tenantDir(t.Name), "pki")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("tenant %s: %w", t.Name, err)
	}
	files := map[string][]byte{runtime.DatastoreCAFile: t.DatastoreServerCA}
	for k, v := range t.PKI {
		files[k] = v
	}
	f := func(name string) string { return filepath.Join(dir, name) }
	server := "https://127.0.0.1:" + strconv.Itoa(p.APIServer)
	for _, id := range []string{tenantpki.ControllerMgr, tenantpki.Scheduler} {
		b, err := kubeconfig.Encode(kubeconfig.Config{Name: "kplex-" + t.Name, Server: server,
			CAPEM: t.PKI[tenantpki.CA+".crt"], CertPEM: t.PKI[id+".crt"], KeyPEM: t.PKI[id+".key"]})
		if err != nil {
			return nil, fmt.Errorf("tenant %s: %w", t.Name, err)
		}
		files[id+".kubeconfig"] = b
	}
	for name, data := range files {
		if err := writeIfChanged(f(name), data); err != nil {
			return nil, fmt.Errorf("tenant %s: %w", t.Name, err)
		}
	}
	stamp := hashFiles(files)

	apiCfg := runtime.APIServerConfig(t, f, t.DatastoreEndpoints)
	apiCfg.SecurePort = p.APIServer
	apiArgs, err := apiservertenant.Flags(apiCfg)
	if err != nil {
		return nil, fmt.Errorf("tenant %s: apiserver flags: %w", t.Name, err)
	}
	cmCfg := runtime.ControllerManagerConfig(t, f)
	cmCfg.SecurePort, cmCfg.LeaderElect = p.Controller, false // one process
	cmArgs, err := cmtenant.Flags(cmCfg)
	if err != nil {
		return nil, fmt.Errorf("tenant %s: controller-manager flags: %w", t.Name, err)
	}
	cmds := []command{
		{component: APIServer, binary: "kplex-apiserver", args: apiArgs, env: apiservertenant.ProcessEnv, limits: LimitsEnv(t.APIServer)},
		{component: Controller, binary: "kplex-controller-manager", args: cmArgs, env: cmtenant.ProcessEnv, limits: LimitsEnv(t.ControllerManager)},
	}
	if t.Scheduler {
		schedArgs, err := schedtenant.Flags(schedtenant.Config{Name: t.Name, Kubeconfig: f(runtime.SchedulerKubeconfigFile), SecurePort: p.Scheduler})
		if err != nil {
			return nil, fmt.Errorf("tenant %s: scheduler flags: %w", t.Name, err)
		}
		cmds = append(cmds, command{component: Scheduler, binary: "kplex-scheduler", args: schedArgs, limits: LimitsEnv(t.SchedulerSize)})
	}
	for i := range cmds {
		c := &cmds[i]
		c.stamp = stamp + "\n" + strings.Join(c.args, "\n")
		if len(c.limits) > 0 { // a changed limit restarts the process
			c.stamp += "\n" + strings.Join(c.limits, "\n")
		}
		c.env = append(slices.Clone(c.limits), c.env...)
	}
	return cmds, nil
}

// hashFiles is a digest of the files' names and contents.
func hashFiles(files map[string][]byte) string {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		fmt.Fprintf(h, "%s %d\n", n, len(files[n]))
		h.Write(files[n])
	}
	return hex.EncodeToString(h.Sum(nil))
}

func writeIfChanged(path string, data []byte) error {
	if old, err := os.ReadFile(path); err == nil && string(old) == string(data) {
		return nil
	}
	return writeAtomic(path, data, 0o600)
}

// writeAtomic writes through a temporary file and a rename, so a crash
// never leaves half a file.
func writeAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
