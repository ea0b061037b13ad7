package main

import (
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"

	_ "github.com/jackc/pgx/v5/stdlib"
	clientv3 "go.etcd.io/etcd/client/v3"

	"kplex.dev/cli/ports"
	"kplex.dev/datastore-proxy/keyspace"
)

// env is one backend with a direct endpoint and a proxy in front of an
// equivalent store, each server in its own process (serve.go).
type env struct {
	directName     string
	directEndpoint string
	proxyEndpoint  string
	// hopName is what stands between the clients and the store in the
	// proxied rows: "proxy", or "relay" (-relay), whose clients are made as
	// the direct ones are.
	hopName string
	pki     *benchPKI
	// proxy is the proxy's process (the relay's with -relay); store is the
	// process that does the backend's work for the proxy (etcd; the proxy
	// itself for sqlite; nil for a database server of the machine), direct
	// the direct endpoint's.
	proxy, store, direct *child
	stops                []func()
}

func (e *env) stop() {
	for i := len(e.stops) - 1; i >= 0; i-- {
		e.stops[i]()
	}
}

// clients returns one client per tenant, each with the prefix its keys
// take: at the proxy, a client of each tenant and no prefix (the proxy
// puts each tenant's keys in its own space); direct, as many clients of
// the direct endpoint, each with the prefix the proxy would have given its
// tenant's keys, so that the store holds the same keys, each client's
// watch sees its own keys only, and the clients hold as many connections
// as at the proxy (ten tenants are ten apiservers, whether they share a
// store through the proxy or not).
func (e *env) clients(tenants int, direct bool) ([]*clientv3.Client, []string, func(), error) {
	endpoint := e.proxyEndpoint
	if direct {
		endpoint = e.directEndpoint
	}
	var out []*clientv3.Client
	var prefixes []string
	closeAll := func() {
		for _, c := range out {
			_ = c.Close()
		}
	}
	for i := range tenants {
		name, prefix := fmt.Sprintf("bench-%d-%d", tenants, i), ""
		if direct || e.hopName == "relay" {
			name, prefix = "direct", keyspace.Root+name+"/"
		}
		c, _, err := e.client(endpoint, name)
		if err != nil {
			closeAll()
			return nil, nil, nil, err
		}
		out, prefixes = append(out, c), append(prefixes, prefix)
	}
	return out, prefixes, closeAll, nil
}

func startBackend(work, kind string, p *benchPKI, proxyProfile string) (*env, error) {
	e := &env{pki: p, hopName: "proxy"}
	dir := filepath.Join(work, kind)
	switch kind {
	case "etcd":
		args := []string{"serve-etcd", dir, p.dir}
		if etcdSeparateHTTP {
			args = append(args, "separate-http")
		}
		etcd, err := e.spawn("etcd", pinStoreCPU, args...)
		if err != nil {
			return nil, err
		}
		e.directName, e.direct, e.store, e.directEndpoint = "etcd direct", etcd, etcd, etcd.endpoint
		if etcdSeparateHTTP {
			e.directName = "etcd direct (HTTP apart)"
		}
		if relayHop {
			relay, err := e.spawn("relay", pinProxyCPU, "serve-relay", etcd.endpoint)
			if err != nil {
				return e, err
			}
			e.hopName, e.proxy, e.proxyEndpoint = "relay", relay, relay.endpoint
			return e, nil
		}
		return e, e.startProxy(proxyProfile, "--backend=etcd", "--datastore-endpoint=https://"+etcd.endpoint,
			"--datastore-cafile="+p.caFile, "--datastore-certfile="+p.serverCrt, "--datastore-keyfile="+p.serverKey)
	case "sqlite":
		kine, err := e.spawn("kine", -1, "serve-kine", p.dir, "sqlite", filepath.Join(dir, "direct"))
		if err != nil {
			return nil, err
		}
		e.directName, e.direct, e.directEndpoint = "kine direct (sqlite)", kine, kine.endpoint
		if err := e.startProxy(proxyProfile, "--backend=sqlite", "--data-dir="+filepath.Join(dir, "proxy")); err != nil {
			return e, err
		}
		e.store = e.proxy
		return e, nil
	case "postgres", "mysql":
		srv := sqlServers[kind]
		direct, proxied := fmt.Sprintf("kplex_bench_%d", rand.Uint32()), fmt.Sprintf("kplex_bench_%d", rand.Uint32())
		e.stops = append(e.stops, func() { srv.dropDB(direct); srv.dropDB(proxied) })
		kine, err := e.spawn("kine", -1, "serve-kine", p.dir, kind, srv.dsn(direct))
		if err != nil {
			return e, err
		}
		e.directName, e.direct, e.directEndpoint = "kine direct ("+kind+")", kine, kine.endpoint
		return e, e.startProxy(proxyProfile, "--backend="+kind, "--datastore-endpoint="+srv.dsn(proxied))
	}
	return nil, fmt.Errorf("unknown backend %q", kind)
}

// spawn starts a child server that e stops.
func (e *env) spawn(name string, pin int, args ...string) (*child, error) {
	c, err := spawn(name, pin, args...)
	if err != nil {
		return nil, err
	}
	e.stops = append(e.stops, c.stop)
	return c, nil
}

// sqlServer is a database server a SQL backend needs; each run gets
// databases of its own on it, dropped when the run ends.
type sqlServer struct {
	addr    string
	driver  string // database/sql driver of admin
	admin   string // DSN of the server itself, for dropping databases
	dsnFmt  string // kine's DSN of a database, %s its name
	dropFmt string // the statement that drops a database, %s its name
}

var sqlServers = map[string]sqlServer{
	"postgres": {addr: "127.0.0.1:5432", driver: "pgx", admin: "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable",
		dsnFmt: "postgres://postgres@127.0.0.1:5432/%s?sslmode=disable", dropFmt: `DROP DATABASE IF EXISTS "%s" WITH (FORCE)`},
	"mysql": {addr: "127.0.0.1:3306", driver: "mysql", admin: "root@tcp(127.0.0.1:3306)/",
		dsnFmt: "mysql://root@tcp(127.0.0.1:3306)/%s", dropFmt: "DROP DATABASE IF EXISTS `%s`"},
}

func (s sqlServer) dsn(db string) string { return fmt.Sprintf(s.dsnFmt, db) }

// dropDB drops database db, best effort (a run's cleanup).
func (s sqlServer) dropDB(db string) {
	c, err := sql.Open(s.driver, s.admin)
	if err != nil {
		return
	}
	defer c.Close()
	_, _ = c.Exec(fmt.Sprintf(s.dropFmt, db))
}

// startProxy runs the proxy, with its default settings but for the
// scheduling flags of the benchmark, over the backend named by flags.
func (e *env) startProxy(profile string, flags ...string) error {
	pp, err := ports.Free(2)
	if err != nil {
		return err
	}
	args := []string{"serve-proxy", "-cpuprofile=" + profile, "--",
		"--listen-address=127.0.0.1:" + strconv.Itoa(pp[0]), "--metrics-address=127.0.0.1:" + strconv.Itoa(pp[1]),
		"--tls-cert-file=" + e.pki.serverCrt, "--tls-key-file=" + e.pki.serverKey, "--client-ca-file=" + e.pki.caFile,
		"--shutdown-grace=1s", "--backend-slots=" + strconv.Itoa(backendSlots), "--backend-tenant-share=" + strconv.Itoa(tenantShare), "--backend-tenant-write-share=" + strconv.Itoa(tenantWriteShare), "--backend-tenant-busy-share=" + strconv.FormatFloat(tenantBusyShare, 'g', -1, 64),
		"--backend-write-slots=" + strconv.Itoa(writeSlots)}
	args = append(append(args, flags...), proxyExtraFlags...)
	proxy, err := spawnWith("proxy", pinProxyCPU, 0, proxyEnv, args...)
	if err != nil {
		return err
	}
	e.stops = append(e.stops, proxy.stop)
	e.proxy, e.proxyEndpoint = proxy, proxy.endpoint
	return nil
}

// servers are the benchmark's server processes of a measurement through
// the proxy or directly: the proxy (nil directly), and the process that
// does the store's work for it (nil when that is the proxy itself, or a
// database server of the machine).
func (e *env) servers(proxied bool) (proxy, store *child) {
	if !proxied {
		return nil, e.direct
	}
	if e.store != nil && e.store != e.proxy {
		store = e.store
	}
	return e.proxy, store
}

// meters are the processes (measure.go) of a measurement through the
// proxy or directly.
func (e *env) meters(proxied bool) [3]int {
	m := [3]int{os.Getpid()}
	proxy, store := e.servers(proxied)
	if proxy != nil {
		m[1] = proxy.pid()
	}
	if store != nil {
		m[2] = store.pid()
	}
	return m
}
