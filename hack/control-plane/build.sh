#!/usr/bin/env bash
# Builds a throwaway Kubernetes control plane for the tests from the Go module proxy:
#   kube-apiserver, kube-controller-manager, kube-scheduler, kubectl  (k8s.io/kubernetes, tools module ./kubernetes)
#   etcd                                                              (go.etcd.io/etcd/server/v3, ./etcd)
#   kwok                                                              (sigs.k8s.io/kwok, ./kwok)
# into ${AGENTRUN_CACHE:-$HOME/.cache/agentrun}/control-plane/<kube>-etcd<v>-kwok<v>/bin/.
#
# Only missing binaries are built: a warm run checks six files and exits. Each binary is linked into a
# temporary directory beside bin/ and renamed into place, so a killed build never leaves a partial binary.
# Go's module and build caches stay at their defaults (outside the repository), so a rebuild after a
# version bump reuses everything that did not change.
#
#   build.sh                    build what is missing
#   build.sh --print-bin-dir    print the bin directory (builds nothing)
#   build.sh --update-modules   regenerate the tools modules' go.mod/go.sum from versions.env, deriving the
#                               staging-module replace list from the pinned k8s.io/kubernetes tag's go.mod
#
# Environment: AGENTRUN_CACHE, GO (go binary), GO_BUILD_P (go build -p, default 2: a kube-apiserver link
# can take several GB), NICE (niceness of the build, default 10).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
source "$HERE/versions.env"

NAME=control-plane
AREA=control-plane
KEY="${KUBE_VERSION}-etcd${ETCD_VERSION}-kwok${KWOK_VERSION}"
KUBE_TOOLS=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
ALL=("${KUBE_TOOLS[@]}" etcd kwok)
# shellcheck source=../lib/cached-build.sh
source "$HERE/../lib/cached-build.sh"
find_go

# The tag's own go.mod (from the module proxy / module cache).
kube_gomod() {
  local f
  f=$("$GO" mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')
  [[ -f "$f" ]] || die "could not download the go.mod of k8s.io/kubernetes@$KUBE_VERSION"
  echo "$f"
}
# Staging modules: every `X => ./staging/src/X` replace in the tag's go.mod.
staging_modules() { sed -n 's#^[[:space:]]*\(replace[[:space:]]\{1,\}\)\{0,1\}\([^[:space:]]\{1,\}\)[[:space:]]\{1,\}=>[[:space:]]\{1,\}\./staging/.*#\2#p' "$1" | sort; }
# v1.33.13 -> v0.33.13
staging_version() { echo "v0.${KUBE_VERSION#v1.}"; }

# A tools module that only requires MODULE@VERSION and keeps TOOL (package main) with a `tool` line.
# Called by update_modules, whose `tmp` it uses.
regenerate_tool_module() {
  local name=$1 module=$2 version=$3 tool=$4
  log "regenerating $name/ for $module $version"
  mkdir -p "$tmp/$name" && cd "$tmp/$name"
  "$GO" mod init "agentrun.local/hack/control-plane/$name" >/dev/null 2>&1
  "$GO" mod edit -require="$module@$version" -tool="$tool"
  "$GO" mod tidy
  cp go.mod go.sum "$HERE/$name/"
}

update_modules() {
  local gomod tmp m goline
  gomod=$(kube_gomod)
  goline=$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$gomod")
  tmp=$(mktemp -d)

  log "regenerating kubernetes/ for k8s.io/kubernetes $KUBE_VERSION (staging modules at $(staging_version))"
  mkdir -p "$tmp/kubernetes" && cd "$tmp/kubernetes"
  "$GO" mod init agentrun.local/hack/control-plane/kubernetes >/dev/null 2>&1
  "$GO" mod edit -go="$goline"
  # godebug lines only apply in the main module: copy upstream's.
  while read -r kv; do "$GO" mod edit -godebug="$kv"; done < <(sed -n 's/^godebug \(.*=.*\)$/\1/p' "$gomod")
  for m in $(staging_modules "$gomod"); do "$GO" mod edit -replace="$m=$m@$(staging_version)"; done
  [[ -n "$(staging_modules "$gomod")" ]] || die "no staging replaces found in $gomod"
  "$GO" mod edit -require="k8s.io/kubernetes@$KUBE_VERSION"
  for m in "${KUBE_TOOLS[@]}"; do "$GO" mod edit -tool="k8s.io/kubernetes/cmd/$m"; done
  "$GO" mod tidy
  cp go.mod go.sum "$HERE/kubernetes/"

  regenerate_tool_module etcd go.etcd.io/etcd/server/v3 "$ETCD_VERSION" go.etcd.io/etcd/server/v3
  regenerate_tool_module kwok sigs.k8s.io/kwok "$KWOK_VERSION" sigs.k8s.io/kwok/cmd/kwok
  cd "$HERE"
  rm -rf "$tmp"
}

# The committed modules must match versions.env and the tag's staging list.
check_modules() {
  local gomod want have
  grep -Eq "^[[:space:]]*k8s.io/kubernetes $KUBE_VERSION( // indirect)?\$" "$HERE/kubernetes/go.mod" \
    || die "kubernetes/go.mod does not require k8s.io/kubernetes $KUBE_VERSION: run $0 --update-modules"
  grep -Eq "^[[:space:]]*go.etcd.io/etcd/server/v3 $ETCD_VERSION( // indirect)?\$" "$HERE/etcd/go.mod" \
    || die "etcd/go.mod does not require go.etcd.io/etcd/server/v3 $ETCD_VERSION: run $0 --update-modules"
  grep -Eq "^[[:space:]]*sigs.k8s.io/kwok $KWOK_VERSION( // indirect)?\$" "$HERE/kwok/go.mod" \
    || die "kwok/go.mod does not require sigs.k8s.io/kwok $KWOK_VERSION: run $0 --update-modules"
  gomod=$(kube_gomod)
  want=$(for m in $(staging_modules "$gomod"); do echo "$m => $m $(staging_version)"; done)
  have=$(cd "$HERE/kubernetes" && "$GO" mod edit -json | sed -n '/"Replace": \[/,$p' \
    | tr -d ' \t\n' | grep -o '"Old":{"Path":"[^"]*"},"New":{"Path":"[^"]*","Version":"[^"]*"}' \
    | sed 's/"Old":{"Path":"\([^"]*\)"},"New":{"Path":"\([^"]*\)","Version":"\([^"]*\)"}/\1 => \2 \3/' | sort || true)
  [[ "$want" == "$have" ]] || die "kubernetes/go.mod replaces differ from the staging list of $KUBE_VERSION: run $0 --update-modules
want:
$want
have:
$have"
}

# build MODULE_DIR NAME PACKAGE [LDFLAGS]: link into a temp dir beside bin/, then rename into bin/.
build_one() {
  local dir=$1 name=$2 pkg=$3 ldflags=${4:-} t0
  [[ -x "$BIN/$name" ]] && { log "$name: cached"; return; }
  t0=$SECONDS
  log "$name: building $pkg ..."
  (cd "$HERE/$dir" && gocmd build -p "$P" -trimpath -ldflags "-s -w $ldflags" -o "$TMP/$name" "$pkg")
  mv -f "$TMP/$name" "$BIN/$name"
  log "$name: built in $((SECONDS - t0))s"
}

# Everything long-running is inside main(), which bash parses whole before running it: editing this file
# while a build runs cannot change what the running build executes.
main() {
begin_build

if [[ "${1:-}" == --update-modules ]]; then
  update_modules
fi
[[ -z "$(missing)" ]] && { log "up to date: $BIN"; exit 0; }

check_modules
prepare_tmp

# Version information, as upstream's hack/lib/version.sh injects it (otherwise /version says v0.0.0-master).
minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
build_date=$("$GO" mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/^[[:space:]]*"Info": "\(.*\)",\{0,1\}$/\1/p' \
  | xargs sed -n 's/.*"Time":"\([^"]*\)".*/\1/p')
kube_ldflags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  kube_ldflags+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  kube_ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=${build_date:-1970-01-01T00:00:00Z}"
done

log "building into $BIN with $("$GO" version | cut -d' ' -f3) (-p $P, nice $NICE)"
build_one etcd etcd go.etcd.io/etcd/server/v3
build_one kwok kwok sigs.k8s.io/kwok/cmd/kwok
for t in kubectl kube-scheduler kube-controller-manager kube-apiserver; do
  build_one kubernetes "$t" "k8s.io/kubernetes/cmd/$t" "$kube_ldflags"
done
end_build
}

main "$@"; exit $?
