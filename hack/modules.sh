#!/usr/bin/env bash
# Module hygiene for the workspace.
#
#   hack/modules.sh tidy     tidy every module's go.mod/go.sum
#   hack/modules.sh verify   fail if any module is untidy or a k8s.io pin drifts
#
# `go mod tidy` ignores go.work, and the k8s.io staging replace block lives
# only in go.work. So each module is tidied through a scratch modfile that
# carries go.work's replaces (and ../<module> replaces for our own modules);
# the result, with those replaces (and requires of our own modules, which
# go.work's `use` resolves) dropped again, must equal the committed go.mod. The k8s.io pins are then checked against go.work.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-verify}

modules=$(go work edit -json | sed -n 's/.*"DiskPath": "\.\/\([^"]*\)".*/\1/p')
k8s_replaces=$(awk '/^replace \(/{r=1;next} r&&/^\)/{r=0} r&&/=>/{print $1, $4}' go.work)

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
fail=0

for m in $modules; do
  mf="$scratch/$m.mod"
  cp "$m/go.mod" "$mf"
  [ -f "$m/go.sum" ] && cp "$m/go.sum" "$scratch/$m.sum" || : > "$scratch/$m.sum"
  args=()
  while read -r path ver; do [ -n "$path" ] && args+=("-replace=$path=$path@$ver"); done <<<"$k8s_replaces"
  for other in $modules; do [ "$other" != "$m" ] && args+=("-replace=kplex.dev/$other=../$other"); done
  go mod edit "${args[@]}" "$mf"
  if ! (cd "$m" && GOWORK=off GOFLAGS=-mod=mod go mod tidy -modfile="$mf") >"$scratch/log" 2>&1; then
    echo "tidy failed in $m:" >&2; grep -v '^go: \(found\|downloading\)' "$scratch/log" >&2; fail=1; continue
  fi
  drop=()
  while read -r path ver; do [ -n "$path" ] && drop+=("-dropreplace=$path"); done <<<"$k8s_replaces"
  # Our own modules are resolved by go.work's `use`, never by a version.
  for other in $modules; do [ "$other" != "$m" ] && drop+=("-dropreplace=kplex.dev/$other" "-droprequire=kplex.dev/$other"); done
  go mod edit "${drop[@]}" "$mf"
  if [ "$mode" = tidy ]; then
    cp "$mf" "$m/go.mod"; cp "$scratch/$m.sum" "$m/go.sum"
    [ -s "$m/go.sum" ] || rm -f "$m/go.sum"
  else
    if ! diff -u "$m/go.mod" "$mf" >"$scratch/diff"; then
      echo "module $m: go.mod is not tidy (run: make tidy):" >&2; cat "$scratch/diff" >&2; fail=1
    fi
    if ! cmp -s "$scratch/$m.sum" "${m}/go.sum" && { [ -s "$scratch/$m.sum" ] || [ -f "$m/go.sum" ]; }; then
      echo "module $m: go.sum is not tidy (run: make tidy)" >&2; fail=1
    fi
  fi
done

# Every k8s.io module any go.mod requires must be at the version go.work pins.
while read -r path ver; do
  [ -n "$path" ] || continue
  for m in $modules; do
    got=$(go mod edit -json "$m/go.mod" | awk -v p="\"$path\"" '$0 ~ "\"Path\": "p {getline; gsub(/[",]/,""); print $2}')
    if [ -n "$got" ] && [ "$got" != "$ver" ] && [ "$got" != v0.0.0 ]; then
      echo "module $m requires $path $got, go.work pins $ver" >&2; fail=1
    fi
  done
done <<<"$k8s_replaces"
for m in $modules; do
  got=$(go mod edit -json "$m/go.mod" | awk '/"Path": "k8s.io\/kubernetes"/ {getline; gsub(/[",]/,""); print $2}')
  if [ -n "$got" ] && [ "$got" != "v1.37.2" ]; then
    echo "module $m requires k8s.io/kubernetes $got, want v1.37.2" >&2; fail=1
  fi
done
[ "$mode" = tidy ] || { [ $fail = 0 ] && echo "modules: tidy, k8s.io pins agree"; }
exit $fail
