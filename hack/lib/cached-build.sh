# Shared by hack/control-plane/build.sh and hack/tools/build.sh: a set of binaries made once into
# ${AGENTRUN_CACHE:-~/.cache/agentrun}/<AREA>/<KEY>/bin/ and reused by every later run and clean clone.
#
# The caller sets NAME (log prefix), AREA, KEY and ALL (the binaries), then sources this file with its
# arguments ("$@"): `--print-bin-dir` and the warm path (nothing missing) end the script here, before Go
# or apt are looked for. A build takes the lock (`begin_build`), makes a fresh temporary directory $TMP
# beside bin/, removed on exit (`prepare_tmp`), writes each binary into $TMP and renames it into bin/ (a
# killed run never leaves a partial binary), and checks that nothing is missing (`end_build`).

CACHE=${AGENTRUN_CACHE:-$HOME/.cache/agentrun}
DEST="$CACHE/$AREA/$KEY"
BIN="$DEST/bin"
NICE=${NICE:-10}
P=${GO_BUILD_P:-2}
export CGO_ENABLED=0

log() { printf '%s: %s\n' "$NAME" "$*" >&2; }
die() { log "error: $*"; exit 1; }

missing() {
  local b out=()
  for b in "${ALL[@]}"; do [[ -x "$BIN/$b" ]] || out+=("$b"); done
  echo "${out[@]:-}"
}

find_go() {
  [[ -n "${GO:-}" ]] && return
  GO=$(command -v go || true)
  [[ -n "$GO" ]] || { [[ -x /usr/local/go/bin/go ]] && GO=/usr/local/go/bin/go; } || die "no go toolchain found (set GO=)"
}
gocmd() { nice -n "$NICE" "$GO" "$@"; }

case "${1:-}" in
  --print-bin-dir) echo "$BIN"; exit 0 ;;
  --update-modules|"") ;;
  *) die "unknown argument ${1} (see the header of $0)" ;;
esac
if [[ "${1:-}" != --update-modules && -z "$(missing)" ]]; then
  log "up to date: $BIN"
  exit 0
fi

# One run at a time per cache (make and a pytest fallback may race).
begin_build() {
  mkdir -p "$CACHE/$AREA"
  exec 9>"$CACHE/$AREA/.build.lock"
  if command -v flock >/dev/null; then flock 9; fi
}
# After begin_build, once the caller knows there is something to make: a fresh $TMP beside bin/.
prepare_tmp() {
  mkdir -p "$BIN"
  # Temporary directories of runs that were SIGKILLed (no EXIT trap); the lock says none is running.
  chmod -R u+w "$DEST"/.tmp.* 2>/dev/null || true
  rm -rf "$DEST"/.tmp.*
  TMP=$(mktemp -d "$DEST/.tmp.XXXXXX")
  trap 'chmod -R u+w "$TMP" 2>/dev/null; rm -rf "$TMP"' EXIT
  T_START=$SECONDS
}
end_build() {
  [[ -z "$(missing)" ]] || die "still missing: $(missing)"
  log "done in $((SECONDS - T_START))s: $BIN"
}
