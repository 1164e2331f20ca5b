# Helpers shared by scripts/capture/{slurm,sge}.sh (sourced, not run).
# A capture file records one real command run; the layout is described in
# tests/data/README.md:
#   # command: <the command line, as given to bash -c>
#   # rc: <exit code>
#   # note: <free text>              (zero or more)
#   # stdout:
#   <stdout, verbatim>
#   # stderr:
#   <stderr, verbatim>

CAP_DIR=${CAP_DIR:?CAP_DIR must be set}
mkdir -p "$CAP_DIR"

say() { echo "[capture] $(date +%T) $*" >&2; }

# cap NAME 'COMMAND LINE' [NOTE...]: run the command with bash -c, write $CAP_DIR/NAME.txt,
# echo its stdout (so that callers can use the result, e.g. a job id).
cap() {
  local name=$1 cmd=$2 rc out err n
  shift 2
  out=$(mktemp) err=$(mktemp)
  set +e
  bash -c "$cmd" >"$out" 2>"$err" </dev/null
  rc=$?
  set -e
  # the layout needs each part to end with a newline (true of every command seen here)
  for n in "$out" "$err"; do
    if [ -s "$n" ] && [ "$(tail -c 1 "$n" | od -An -c | tr -d ' ')" != '\n' ]; then
      say "WARNING: $name: output without trailing newline, one added"; echo >>"$n"
    fi
  done
  if grep -qx '# stderr:' "$out"; then say "ERROR: $name: stdout holds a '# stderr:' line"; return 1; fi
  {
    echo "# command: $cmd"
    echo "# rc: $rc"
    for n in "$@"; do echo "# note: $n"; done
    echo "# stdout:"
    cat "$out"
    echo "# stderr:"
    cat "$err"
  } >"$CAP_DIR/$name.txt"
  say "$name: rc=$rc $(wc -l <"$out") stdout line(s), $(wc -l <"$err") stderr line(s)"
  cat "$out"
  rm -f "$out" "$err"
}

# wait_until SECONDS CMD...: poll every 0.5 s (bounded); rc 1 on time-out
wait_until() {
  local secs=$1 i
  shift
  for ((i = 0; i < secs * 2; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  say "timed out after ${secs}s: $*"
  return 1
}
