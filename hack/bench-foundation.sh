#!/usr/bin/env bash
# Foundation benchmark: build times, `kplexctl up` times and idle memory.
# Prints a markdown report (docs/benchmarks.md keeps the figures).
#
#   make bench-foundation                 # no-op build, 3 x up, idle memory
#   BENCH_COLD=1 make bench-foundation    # also a cold compile (empty GOCACHE,
#                                         # warm module cache), ~5 min
#   BENCH_RUNS=5 BENCH_IDLE=120 ...       # more up runs, longer idle wait
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${BENCH_RUNS:-3}
idle=${BENCH_IDLE:-60}
work=$(mktemp -d /tmp/kplex-bench-XXXXXX)
cleanup() { bin/kplexctl down --dir "$work/env" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT

add() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a+b}'; }
since() { add "$(date +%s.%N)" "-$1"; }
secs() { local s=$(date +%s.%N); "$@" >"$work/cmd.log" 2>&1 || { cat "$work/cmd.log" >&2; return 1; }; since "$s"; }

echo "## Foundation benchmark ($(date -u +%Y-%m-%d), $(nproc) cores, $(go version | awk '{print $3}'))"
echo
if [ "${BENCH_COLD:-0}" = 1 ]; then
  cold=$(GOCACHE="$work/gocache" secs make build)
  echo "- cold \`make build\` (empty build cache, warm module cache): ${cold%.*} s"
fi
make build >/dev/null
noop=$(secs make build)
printf -- "- no-op \`make build\`: %.1f s\n" "$noop"
echo

# `up` from nothing, several times: total, host (until nodes Ready), and
# the virtual cluster's API (demo-apiserver start -> /readyz) and whole
# control plane (-> controller manager ready with its default SA).
echo "| run | up total (s) | host ready (s) | vcluster API ready (s) | vcluster ready (s) |"
echo "|---|---|---|---|---|"
for i in $(seq 1 "$runs"); do
  rm -rf "$work/env"
  t0=$(date +%s.%N)
  bin/kplexctl up --dir "$work/env" --free-ports >"$work/up.log" 2>&1 || { cat "$work/up.log" >&2; exit 1; }
  total=$(since "$t0")
  ready() { awk -v n="$1" '$1=="ready:" && $2==n {print $3}' "$work/up.log" | tr -d s; }
  host=0; for c in etcd host-apiserver host-controller-manager host-scheduler kwok; do host=$(add "$host" "$(ready $c)"); done
  api=$(ready demo-apiserver); cm=$(ready demo-controller-manager)
  printf "| %d | %.1f | %.1f | %.1f | %.1f |\n" "$i" "$total" "$host" "$api" "$(add "$api" "$cm")"
  [ "$i" = "$runs" ] || bin/kplexctl down --dir "$work/env" >/dev/null
done
echo

# Idle memory of the last environment. RSS counts the binary's pages in
# every process; PSS splits shared pages (the same binary's text in the host
# and tenant apiservers) between the processes that share them.
sleep "$idle"
echo "Idle memory after ${idle} s:"
echo
echo "| process | RSS (MiB) | PSS (MiB) | private anon (MiB) |"
echo "|---|---|---|---|"
vc_rss=0; vc_pss=0
for pidf in "$work"/env/run/*.pid; do
  name=$(basename "$pidf" .pid); pid=$(awk '{print $1}' "$pidf")
  rss=$(awk '/^VmRSS/{print int($2/1024)}' /proc/$pid/status)
  anon=$(awk '/^RssAnon/{print int($2/1024)}' /proc/$pid/status)
  pss=$(awk '/^Pss:/{print int($2/1024)}' /proc/$pid/smaps_rollup)
  echo "| $name | $rss | $pss | $anon |"
  case $name in demo-*) vc_rss=$((vc_rss + rss)); vc_pss=$((vc_pss + pss));; esac
done
echo "| **demo apiserver + controller-manager** | **$vc_rss** | **$vc_pss** | |"
