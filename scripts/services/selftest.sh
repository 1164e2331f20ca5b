#!/usr/bin/env bash
# scripts/services/selftest.sh - re-checks the key facts of docs/notes/ssh-containers.md against
# the running test services (start them first: sshd.sh start; containers.sh setup).
#
# Usage: selftest.sh [ssh] [containers]       (default: both)
# Prints one line per check and a closing "N passed, N failed" line; exits 1 if any failed.
# Takes about 15 s. Touches only its own jobs/containers (names xqute-selftest-*).
set -uo pipefail

WHAT=${*:-ssh containers}
SSHD_DIR=${XQUTE_SSHD_DIR:-/tmp/xqute-sshd}
CT_DIR=${XQUTE_CT_DIR:-/tmp/xqute-containers}
IMG=${XQUTE_CT_IMAGE:-localhost/xqute-test:latest}
PASS=0; FAIL=0
ok()  { PASS=$((PASS + 1)); echo "  ok    $*"; }
bad() { FAIL=$((FAIL + 1)); echo "  FAIL  $*"; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else bad "$name"; fi; }
verdict() { if [ "$1" = 0 ]; then ok "$2"; else bad "$2"; fi; }   # verdict $? NAME

# ----------------------------------------------------------------------------------------- ssh
ssh_checks() {
    [ -s "$SSHD_DIR/env.sh" ] || { bad "ssh: $SSHD_DIR/env.sh missing (run sshd.sh start)"; return; }
    # shellcheck disable=SC1091
    . "$SSHD_DIR/env.sh"
    local work=$SSHD_DIR/selftest; rm -rf "$work"; mkdir -p "$work"
    local -a S
    read -r -a S <<< "$XQUTE_SSH_OPTS"
    S+=(-o ControlMaster=auto -o "ControlPath=$SSHD_DIR/cm-%C" -o ControlPersist=30
        -o ConnectTimeout=5 -o ServerAliveInterval=5 -o ServerAliveCountMax=3)
    local T=(-p 2222 root@127.0.0.1)
    echo "== ssh"
    check "ssh: command runs, output comes back" [ "$(timeout 20 ssh "${S[@]}" "${T[@]}" 'echo ok')" = ok ]
    timeout 20 ssh "${S[@]}" "${T[@]}" 'exit 7'; check "ssh: remote exit code 7 passed through" [ $? = 7 ]
    check "ssh: master running (-O check)" timeout 10 ssh "${S[@]}" -O check "${T[@]}" 2>/dev/null
    local _; for _ in 1 2 3; do timeout 20 ssh "${S[@]}" "${T[@]}" 'sleep 2' & done; sleep 1
    local conns; conns=$(ss -Htn state established '( dport = :2222 )' | wc -l)
    wait
    check "ssh: 3 concurrent commands share 1 TCP connection (got $conns)" [ "$conns" = 1 ]

    cat > "$work/job.sh" <<'EOF'
trap 'echo "TERM $EPOCHREALTIME" >> trap.txt; kill $c 2>/dev/null; exit 143' TERM
echo "started $$"
sleep 300 & c=$!
wait $c
EOF
    local launch='cd '"$work"' || exit 1; setsid nohup bash job.sh > job.out 2>&1 < /dev/null & p=$!; read -r l < /proc/$p/stat; set -- ${l##*) }; echo "$p:${20}"'
    local job t0 t1; t0=$(date +%s%N)
    job=$(timeout 20 ssh "${S[@]}" "${T[@]}" "$launch"); t1=$(date +%s%N)
    [ $(( (t1 - t0) / 1000000 )) -lt 3000 ] && [[ $job =~ ^[0-9]+:[0-9]+$ ]]
    # shellcheck disable=SC2319
    verdict $? "ssh: detached launch returns at once ($(( (t1 - t0) / 1000000 )) ms) with PID:START ($job)"
    local pid=${job%%:*}; sleep 0.3
    check "ssh: job is its own process group (pgid = pid)" [ "$(ps -o pgid= -p "$pid" | tr -d ' ')" = "$pid" ]

    # a zombie: the child of a parent that exec'd into something that never waits
    timeout 20 ssh "${S[@]}" "${T[@]}" "cd $work; setsid nohup sh -c 'sleep 0.1 & echo \$! > zpid; exec sleep 30' > z.out 2>&1 < /dev/null &"
    sleep 0.5
    local zp zst; zp=$(cat "$work/zpid"); zst=$(awk '{print $22}' "/proc/$zp/stat" 2>/dev/null)
    local status='for j in '"$job $zp:$zst ${pid}:1 999999:1"'; do p=${j%%:*}; t=${j#*:}; l=; { read -r l < /proc/$p/stat; } 2>/dev/null; set -- ${l##*) }; if [ -n "$l" ] && [ "$1" != Z ] && [ "$1" != X ] && [ "${20}" = "$t" ]; then echo "$p 1"; else echo "$p 0"; fi; done'
    local got; got=$(timeout 20 ssh "${S[@]}" "${T[@]}" "$status" | tr '\n' ',')
    check "ssh: status one-liner: alive, zombie, reused pid, missing -> $got" \
        [ "$got" = "$pid 1,$zp 0,$pid 0,999999 0," ]
    timeout 20 ssh "${S[@]}" "${T[@]}" "kill -TERM -$pid"
    for _ in $(seq 30); do
        got=$(timeout 20 ssh "${S[@]}" "${T[@]}" "$status" | head -1)
        [ "$got" = "$pid 0" ] && break; sleep 0.2
    done
    [ "$got" = "$pid 0" ] && grep -q TERM "$work/trap.txt"
    verdict $? "ssh: kill -TERM -PGID ends the job, status says dead, trap ran"
    kill -KILL "$(awk '{print $4}' "/proc/$zp/stat" 2>/dev/null)" 2>/dev/null || true  # the exec'd sleep 30
    timeout 10 ssh "${S[@]}" -O exit "${T[@]}" 2>/dev/null
    for _ in $(seq 20); do   # the master exits asynchronously
        timeout 10 ssh "${S[@]}" -O check "${T[@]}" 2>/dev/null || break; sleep 0.1
    done
    ! timeout 10 ssh "${S[@]}" -O check "${T[@]}" 2>/dev/null
    verdict $? "ssh: master gone after -O exit"
}

# ---------------------------------------------------------------------------------- containers
ct_checks() {
    local E=$1 d=$CT_DIR/selftest-$1 n=xqute-selftest-$1 out rc t0 t1
    echo "== $E"
    command -v "$E" >/dev/null || { bad "$E: not installed (run containers.sh setup)"; return; }
    rm -rf "$d"; mkdir -p "$d"
    printf '%s\n' '#!/bin/bash' 'trap "exit 143" TERM' \
        '[[ ${BASH_VERSINFO[0]} -ge 5 ]] || exit 9' 'echo "$EPOCHREALTIME $K $PWD" > out.txt' \
        'sleep "${1:-0}" & wait $!' 'exit 3' > "$d/job.sh"
    "$E" rm -f "$n-1" "$n-2" "$n-3" >/dev/null 2>&1
    "$E" run -d --name "$n-1" --pull=never -v "$d:/xq" -w /xq -e 'K=a b' --entrypoint /bin/bash "$IMG" /xq/job.sh >/dev/null
    rc=$("$E" wait "$n-1")
    check "$E: run -d ... --entrypoint /bin/bash IMG script -> exit 3 (got $rc)" [ "$rc" = 3 ]
    check "$E: bash 5, -e, -w, bind mount (out: $(cut -d' ' -f2- "$d/out.txt" 2>/dev/null))" \
        [ "$(cut -d' ' -f2- "$d/out.txt" 2>/dev/null)" = "a b /xq" ]
    check "$E: bind-mounted file owned by root" [ "$(stat -c %u "$d/out.txt")" = 0 ]
    "$E" run -d --name "$n-2" --pull=never -v "$d:/xq" -w /xq --entrypoint /bin/bash "$IMG" /xq/job.sh 300 >/dev/null
    "$E" run -d --name "$n-3" --pull=never "$IMG" true >/dev/null 2>&1; "$E" wait "$n-3" >/dev/null
    out=$("$E" run -d --name "$n-3" --pull=never "$IMG" true 2>&1); rc=$?
    check "$E: name in use -> rc 125" [ "$rc" = 125 ]
    out=$("$E" ps -a --filter "name=^$n-" --format '{{.Names}}\t{{.Status}}' | sort | sed 's/\t/|/' | cut -c1-40 | tr '\n' ',')
    [[ $out =~ ^$n-1\|Exited\ \(3\)[^,]*,$n-2\|Up[^,]*,$n-3\|Exited\ \(0\)[^,]*,$ ]]
    # shellcheck disable=SC2319
    verdict $? "$E: ps --filter name=^PREFIX --format '{{.Names}}\t{{.Status}}': $out"
    out=$("$E" inspect -f '{{.Name}}|{{.State.Status}}|{{.State.ExitCode}}' "$n-1" "$n-2" "$n-3" 2>/dev/null | sed 's#^/##' | tr '\n' ',')
    check "$E: inspect of 3 at once: $out" [ "$out" = "$n-1|exited|3,$n-2|running|0,$n-3|exited|0," ]
    t0=$(date +%s%N); "$E" stop "$n-2" >/dev/null; t1=$(date +%s%N)
    rc=$("$E" inspect -f '{{.State.ExitCode}}' "$n-2")
    [ "$rc" = 143 ] && [ $(( (t1 - t0) / 1000000 )) -lt 5000 ]
    verdict $? "$E: stop with a TERM trap is quick ($(( (t1 - t0) / 1000000 )) ms) -> 143 (got $rc)"
    "$E" run --rm --pull=never localhost/xqute-no-such-image:latest true >/dev/null 2>&1
    check "$E: missing image with --pull=never -> rc 125" [ $? = 125 ]
    "$E" run --rm --pull=never "$IMG" /no/such/cmd >/dev/null 2>&1
    check "$E: command not found -> rc 127" [ $? = 127 ]
    "$E" rm -f "$n-1" "$n-2" "$n-3" >/dev/null 2>&1
}

for w in $WHAT; do
    case "$w" in
        ssh) ssh_checks ;;
        containers)
            # shellcheck disable=SC1091
            [ -s "$CT_DIR/env.sh" ] && . "$CT_DIR/env.sh"
            for e in ${XQUTE_CT_ENGINES:-podman docker}; do ct_checks "$e"; done ;;
        *) echo "unknown part '$w' (ssh|containers)"; exit 2 ;;
    esac
done
echo "selftest: $PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
