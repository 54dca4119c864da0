#!/usr/bin/env bash
# Fetches/builds the external tools the tests use, pinned in versions.env:
#   helm                 helm.sh/helm/v3/cmd/helm, `go install pkg@version` from the Go module proxy
#   prometheus, promtool Debian package `prometheus`: `apt-get download` + `dpkg-deb -x` (no system install)
#   skaffold             github.com/GoogleContainerTools/skaffold/v2/cmd/skaffold, tools module ./skaffold
# into ${AGENTRUN_CACHE:-$HOME/.cache/agentrun}/tools/helm<v>-prometheus<v>-skaffold<v>/bin/.
#
# Only missing binaries are made: a warm run checks four files and exits (no Go, no apt). Each binary is
# written into a temporary directory beside bin/ and renamed into place, so a killed run never leaves a
# partial binary. Go's module and build caches stay at their defaults (outside the repository).
#
#   build.sh                    make what is missing
#   build.sh --print-bin-dir    print the bin directory (makes nothing)
#   build.sh --update-modules   regenerate skaffold/go.mod and go.sum from versions.env, copying the
#                               replace and exclude directives of the pinned skaffold tag's go.mod
#
# Environment: AGENTRUN_CACHE, GO (go binary), GO_BUILD_P (go build -p, default 2), NICE (niceness of the
# build, default 10).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
source "$HERE/versions.env"

NAME=tools
AREA=tools
KEY="helm${HELM_VERSION}-prometheus${PROMETHEUS_DEB_VERSION}-skaffold${SKAFFOLD_VERSION}"
ALL=(helm prometheus promtool skaffold)
# shellcheck source=../lib/cached-build.sh
source "$HERE/../lib/cached-build.sh"
SKAFFOLD_MODULE=github.com/GoogleContainerTools/skaffold/v2

is_missing() { [[ ! -x "$BIN/$1" ]]; }

# `go mod download -json MODULE@VERSION` field (GoMod, Info, Dir, ...).
mod_field() {
  "$GO" mod download -json "$1" | sed -n "s/^[[:space:]]*\"$2\": \"\\(.*\\)\",\\{0,1\\}\$/\\1/p"
}
# The replace and exclude directives of a go.mod, one normalised line each, sorted.
mod_directives() {
  "$GO" mod edit -json "$1" | tr -d ' \t\n' \
    | grep -o '"Old":{"Path":"[^"]*"\(,"Version":"[^"]*"\)\{0,1\}},"New":{"Path":"[^"]*"\(,"Version":"[^"]*"\)\{0,1\}}\|"Exclude":\[[^]]*\]' \
    | sed -e 's/"Old":{"Path":"\([^"]*\)"\(,"Version":"\([^"]*\)"\)\{0,1\}},"New":{"Path":"\([^"]*\)"\(,"Version":"\([^"]*\)"\)\{0,1\}}/replace \1 \3 => \4 \6/' \
          -e 's/"Exclude":\[//; s/\]$//; s/},{/}\n{/g' \
    | sed 's/^{"Path":"\([^"]*\)","Version":"\([^"]*\)"}$/exclude \1 \2/; s/  */ /g' | sort || true
}

# -------------------------------------------------------------------------------------------- skaffold

# skaffold's go.mod has replace (and exclude) directives, which only apply in the main module: the tools
# module requires the tag, copies them, and keeps cmd/skaffold with a `tool` line.
update_modules() {
  local gomod tmp goline line
  gomod=$(mod_field "$SKAFFOLD_MODULE@$SKAFFOLD_VERSION" GoMod)
  [[ -f "$gomod" ]] || die "could not download the go.mod of $SKAFFOLD_MODULE@$SKAFFOLD_VERSION"
  goline=$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$gomod")
  tmp=$(mktemp -d)
  log "regenerating skaffold/ for $SKAFFOLD_MODULE $SKAFFOLD_VERSION (go $goline)"
  (
    cd "$tmp"
    "$GO" mod init agentrun.local/hack/tools/skaffold >/dev/null 2>&1
    "$GO" mod edit -go="$goline" -require="$SKAFFOLD_MODULE@$SKAFFOLD_VERSION" -tool="$SKAFFOLD_MODULE/cmd/skaffold"
    while read -r line; do
      # shellcheck disable=SC2086
      set -- $line
      case "$1" in
        # replace OLD => NEW [VERSION] | replace OLD OLDVERSION => NEW [VERSION]
        replace) if [[ "$3" == "=>" ]]; then "$GO" mod edit -replace="$2=$4${5:+@$5}"
                 else "$GO" mod edit -replace="$2@$3=$5${6:+@$6}"; fi ;;
        exclude) "$GO" mod edit -exclude="$2@$3" ;;
      esac
    done < <(mod_directives "$gomod")
    "$GO" mod tidy
    cp go.mod go.sum "$HERE/skaffold/"
  )
  rm -rf "$tmp"
}

check_skaffold_module() {
  local gomod want have
  grep -Eq "^[[:space:]]*(require[[:space:]]+)?$SKAFFOLD_MODULE $SKAFFOLD_VERSION( // indirect)?\$" "$HERE/skaffold/go.mod" \
    || die "skaffold/go.mod does not require $SKAFFOLD_MODULE $SKAFFOLD_VERSION: run $0 --update-modules"
  gomod=$(mod_field "$SKAFFOLD_MODULE@$SKAFFOLD_VERSION" GoMod)
  want=$(mod_directives "$gomod")
  have=$(mod_directives "$HERE/skaffold/go.mod")
  [[ "$want" == "$have" ]] || die "skaffold/go.mod's replace/exclude directives differ from $SKAFFOLD_VERSION's go.mod: run $0 --update-modules
want:
$want
have:
$have"
}

# ------------------------------------------------------------------------------------------------ build

build_helm() {
  is_missing helm || { log "helm: cached"; return; }
  local t0=$SECONDS gomod k8s major minor pkg=helm.sh/helm/v3 ldflags
  find_go
  # helm's Makefile derives the default Kubernetes version (.Capabilities.KubeVersion of `helm template`,
  # the deprecation lint) from its k8s.io/client-go requirement: v0.34.0 -> 1.34 (without it: 1.20).
  gomod=$(mod_field "helm.sh/helm/v3@$HELM_VERSION" GoMod)
  k8s=$(sed -n 's/^[[:space:]]*k8s.io\/client-go v0\.\([0-9]*\)\.\([0-9]*\).*/1 \1/p' "$gomod" | head -1)
  [[ -n "$k8s" ]] || die "no k8s.io/client-go requirement in helm $HELM_VERSION's go.mod ($gomod)"
  read -r major minor <<<"$k8s"
  ldflags="-s -w -X $pkg/internal/version.version=$HELM_VERSION -X $pkg/internal/version.metadata="
  ldflags+=" -X $pkg/internal/version.gitCommit=$HELM_GIT_COMMIT -X $pkg/internal/version.gitTreeState=clean"
  ldflags+=" -X $pkg/pkg/lint/rules.k8sVersionMajor=$major -X $pkg/pkg/lint/rules.k8sVersionMinor=$minor"
  ldflags+=" -X $pkg/pkg/chartutil.k8sVersionMajor=$major -X $pkg/pkg/chartutil.k8sVersionMinor=$minor"
  log "helm: go install $pkg/cmd/helm@$HELM_VERSION ..."
  (cd "$TMP" && GOBIN="$TMP/gobin" gocmd install -p "$P" -trimpath -ldflags "$ldflags" "$pkg/cmd/helm@$HELM_VERSION")
  mv -f "$TMP/gobin/helm" "$BIN/helm"
  log "helm: built in $((SECONDS - t0))s"
}

apt_download() {
  local opts=()
  # As root, apt drops to the _apt user, which cannot write into our private temp directory.
  [[ $EUID -eq 0 ]] && opts=(-o APT::Sandbox::User=root)
  (cd "$TMP/deb" && apt-get -q "${opts[@]}" download "prometheus=$PROMETHEUS_DEB_VERSION")
}

apt_policy() {
  local p
  p=$(apt-cache policy prometheus 2>/dev/null | tr -s ' \n' ' ')
  echo "${p:-nothing (no package lists?)}"
}

fetch_prometheus() {
  if ! is_missing prometheus && ! is_missing promtool; then log "prometheus, promtool: cached"; return; fi
  local t0=$SECONDS deb b
  command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null \
    || die "prometheus: needs apt-get and dpkg-deb (Debian/Ubuntu) to fetch the package prometheus=$PROMETHEUS_DEB_VERSION"
  mkdir -p "$TMP/deb" "$TMP/root"
  log "prometheus: apt-get download prometheus=$PROMETHEUS_DEB_VERSION ..."
  if ! apt_download; then
    if [[ $EUID -eq 0 ]]; then
      log "prometheus: download failed; running apt-get update once and retrying"
      apt-get -q update >&2 || die "apt-get update failed"
      apt_download || die "prometheus: apt-get download prometheus=$PROMETHEUS_DEB_VERSION failed after apt-get update (apt-cache policy prometheus: $(apt_policy))"
    else
      die "prometheus: apt-get download prometheus=$PROMETHEUS_DEB_VERSION failed (package lists missing or that version no longer offered; apt-cache policy prometheus: $(apt_policy)). Run 'sudo apt-get update' and retry, or pin an offered version in $HERE/versions.env"
    fi
  fi
  deb=$(find "$TMP/deb" -name 'prometheus_*.deb' | head -1)
  [[ -n "$deb" ]] || die "prometheus: apt-get download left no .deb in $TMP/deb"
  [[ "$(dpkg-deb -f "$deb" Version)" == "$PROMETHEUS_DEB_VERSION" ]] \
    || die "prometheus: downloaded $(dpkg-deb -f "$deb" Version), pinned $PROMETHEUS_DEB_VERSION"
  dpkg-deb -x "$deb" "$TMP/root"
  # Only the two binaries: prometheus starts and serves its API without the web UI's assets
  # (usr/share/prometheus/web) or the console templates (etc/prometheus/consoles).
  for b in prometheus promtool; do
    [[ -x "$TMP/root/usr/bin/$b" ]] || die "prometheus: the package has no usr/bin/$b"
    mv -f "$TMP/root/usr/bin/$b" "$BIN/$b"
  done
  log "prometheus, promtool: fetched in $((SECONDS - t0))s"
}

build_skaffold() {
  is_missing skaffold || { log "skaffold: cached"; return; }
  local t0=$SECONDS info date origin pkg=$SKAFFOLD_MODULE/pkg/skaffold/version ldflags
  find_go
  check_skaffold_module
  info=$(mod_field "$SKAFFOLD_MODULE@$SKAFFOLD_VERSION" Info)
  date=$(sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "$info")
  origin=$(sed -n 's/.*"Hash":"\([0-9a-f]*\)".*/\1/p' "$info")
  [[ -z "$origin" || "$origin" == "$SKAFFOLD_GIT_COMMIT" ]] \
    || die "SKAFFOLD_GIT_COMMIT=$SKAFFOLD_GIT_COMMIT but the proxy says $SKAFFOLD_VERSION is $origin"
  # As upstream's Makefile (GO_LDFLAGS, linux release tags), without cgo.
  ldflags="-s -w -X $pkg.version=$SKAFFOLD_VERSION -X $pkg.gitCommit=$SKAFFOLD_GIT_COMMIT -X $pkg.buildDate=${date:-1970-01-01T00:00:00Z}"
  log "skaffold: building $SKAFFOLD_MODULE/cmd/skaffold ..."
  (cd "$HERE/skaffold" && gocmd build -p "$P" -trimpath -tags "timetzdata osusergo netgo static_build release" \
    -ldflags "$ldflags" -o "$TMP/skaffold" "$SKAFFOLD_MODULE/cmd/skaffold")
  mv -f "$TMP/skaffold" "$BIN/skaffold"
  log "skaffold: built in $((SECONDS - t0))s"
}

# Everything long-running is inside main(), which bash parses whole before running it: editing this file
# while a build runs cannot change what the running build executes.
main() {
begin_build
if [[ "${1:-}" == --update-modules ]]; then
  find_go
  update_modules
fi
[[ -z "$(missing)" ]] && { log "up to date: $BIN"; exit 0; }

prepare_tmp
log "making $(missing) into $BIN (nice $NICE, -p $P)"
fetch_prometheus
build_helm
build_skaffold
end_build
}

main "$@"; exit $?
