#!/usr/bin/env bash
# Single-node (Son of) Grid Engine 8.1.9 cluster for xqute's tests
# (Debian 12, run as root, no systemd).
#
#   scripts/services/sge.sh start    install what is missing, configure the cell,
#                                    start sge_qmaster and sge_execd (only those not
#                                    running), wait until all.q@<host> takes jobs,
#                                    print one "SGE READY" line
#   scripts/services/sge.sh stop     delete all jobs, stop the daemons (pidfiles only)
#   scripts/services/sge.sh status   print what runs; rc 0 if the queue takes jobs
#
# Idempotent: "start" re-applies the configuration (cheap) and starts only what is down.
#
# Environment knobs (defaults in brackets):
#   SGE_SLOTS           slots of all.q [max(4, nproc)]
#   SGE_READY_TIMEOUT   seconds to wait for each daemon / the queue [120]
#
# Facts: SGE_ROOT=/var/lib/gridengine, SGE_CELL=default (the Debian client tools
# find them without any environment), queue all.q, parallel environment smp,
# scheduler interval 1 s, shell_start_mode unix_behavior (the #! line is honoured),
# notify 5 s.
# Logs: /var/spool/gridengine/qmaster/messages, /var/spool/gridengine/execd/<host>/messages
set -euo pipefail

NODE=$(hostname -s)
NCPU=$(nproc)
SLOTS=${SGE_SLOTS:-$((NCPU < 4 ? 4 : NCPU))}
TIMEOUT=${SGE_READY_TIMEOUT:-120}
export SGE_ROOT=/var/lib/gridengine SGE_CELL=default
COMMON=$SGE_ROOT/$SGE_CELL/common
SPOOL=/var/spool/gridengine
QMASTER_PID=$SPOOL/qmaster/qmaster.pid
QUEUE=all.q

log() { echo "[sge.sh] $(date +%T) $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
pid_alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

wait_for() { # wait_for SECONDS DESCRIPTION CMD...: poll every 0.2 s, bounded
  local secs=$1 what=$2; shift 2
  local tries=$((secs * 5)) i
  for ((i = 0; i < tries; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  log "timed out after ${secs}s waiting for $what"
  return 1
}

execd_pidfiles() { ls "$SPOOL"/execd/*/execd.pid 2>/dev/null || true; }
execd_alive() {
  local pf
  for pf in $(execd_pidfiles); do pid_alive "$pf" && return 0; done
  return 1
}

# ------------------------------------------------------------------ install
ensure_packages() {
  local pkgs=(gridengine-common gridengine-client gridengine-master gridengine-exec) missing=() p
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  # Pre-answer debconf so that the postinst sets up cell "default" with us as master.
  for p in "${pkgs[@]}"; do
    echo "$p shared/gridengineconfig boolean true"
    echo "$p shared/gridenginecell string default"
    echo "$p shared/gridenginemaster string $NODE"
  done | debconf-set-selections
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  local apt=(apt-get -o DPkg::Lock::Timeout=600 -y --no-install-recommends install)
  if ! "${apt[@]}" "${missing[@]}" >/tmp/xqute-sge-apt.log 2>&1; then
    log "install failed, running apt-get update and retrying"
    apt-get -o DPkg::Lock::Timeout=600 update >>/tmp/xqute-sge-apt.log 2>&1 || true
    "${apt[@]}" "${missing[@]}" >>/tmp/xqute-sge-apt.log 2>&1 \
      || { tail -n 30 /tmp/xqute-sge-apt.log >&2; die "apt-get install failed"; }
  fi
}

# ------------------------------------------------------------------ cell
setup_cell() {
  install -d -o sgeadmin -g sgeadmin -m 755 "$SGE_ROOT/$SGE_CELL" "$COMMON" \
    "$SPOOL/qmaster" "$SPOOL/qmaster/job_scripts" "$SPOOL/spooldb" "$SPOOL/execd"
  [ -s "$COMMON/bootstrap" ] \
    || install -m 644 -o sgeadmin -g sgeadmin /usr/share/gridengine/default-bootstrap "$COMMON/bootstrap"
  # Creates the spool db and the default objects once; a no-op when they exist.
  su -s /bin/sh -c "/usr/share/gridengine/scripts/init_cluster $SGE_ROOT $SGE_CELL $SPOOL/spooldb sgeadmin" \
    sgeadmin >/tmp/xqute-sge-init.log 2>&1 || { tail -n 20 /tmp/xqute-sge-init.log >&2; die "init_cluster failed"; }
  echo "$NODE" > "$COMMON/act_qmaster"
  # SGE resolves a client's address back to a name and compares it with the name
  # the client reports. Here 127.0.0.1 resolves to "localhost" while the host
  # calls itself "$NODE" -> "access denied". One alias line makes them the same host.
  local names="$NODE localhost" ip n
  for ip in $(getent ahostsv4 "$NODE" | awk '{print $1}' | sort -u); do
    for n in $(getent hosts "$ip" | awk '{for (i = 2; i <= NF; i++) print $i}'); do
      case " $names " in *" $n "*) ;; *) names="$names $n" ;; esac
    done
  done
  echo "$names" > "$COMMON/host_aliases"
  chown sgeadmin:sgeadmin "$COMMON/act_qmaster" "$COMMON/host_aliases"
}

qmaster_up() { qconf -sh >/dev/null 2>&1; }

start_qmaster() {
  if ! pid_alive "$QMASTER_PID"; then
    log "starting sge_qmaster"
    setsid /usr/sbin/sge_qmaster
  fi
  wait_for "$TIMEOUT" "sge_qmaster to answer" qmaster_up \
    || { tail -n 20 "$SPOOL/qmaster/messages" >&2 || true; die "sge_qmaster does not answer"; }
}

# quiet CMD...: run CMD, show its output only when it fails
quiet() {
  local out
  out=$("$@" 2>&1) || { log "failed: $* -> $out"; return 1; }
}

# set_key FILE KEY VALUE: set "KEY VALUE" in a qconf-style file
set_key() { sed -i -E "s|^$2[[:space:]].*|$2 $3|" "$1"; }

configure() {
  local w
  w=$(mktemp -d /tmp/xqute-sge.XXXXXX)
  # global config: allow root's jobs (min_uid/min_gid 0), quick load reports,
  # accounting file flushed every second (qacct sees a job ~1 s after it ends)
  qconf -sconf > "$w/global"
  set_key "$w/global" min_uid 0
  set_key "$w/global" min_gid 0
  set_key "$w/global" load_report_time 00:00:05
  set_key "$w/global" max_unheard 00:01:00
  set_key "$w/global" finished_jobs 1000
  sed -i -E 's/flush_time=[0-9:]+/flush_time=00:00:01/' "$w/global"
  grep -q 'flush_time=' "$w/global" || log "warning: no flush_time in reporting_params"
  quiet qconf -Mconf "$w/global"
  # scheduler: run every second and right after each submit / job end
  qconf -ssconf > "$w/sched"
  set_key "$w/sched" schedule_interval 0:0:1
  set_key "$w/sched" flush_submit_sec 1
  set_key "$w/sched" flush_finish_sec 1
  set_key "$w/sched" job_load_adjustments NONE
  set_key "$w/sched" load_adjustment_decay_time 0:0:0
  quiet qconf -Msconf "$w/sched"
  qconf -ss 2>/dev/null | grep -qx "$NODE" || quiet qconf -as "$NODE"
  qconf -sh 2>/dev/null | grep -qx "$NODE" || quiet qconf -ah "$NODE"
  cat > "$w/exechost" <<EOF
hostname              $NODE
load_scaling          NONE
complex_values        NONE
user_lists            NONE
xuser_lists           NONE
projects              NONE
xprojects             NONE
usage_scaling         NONE
report_variables      NONE
EOF
  if qconf -se "$NODE" >/dev/null 2>&1; then quiet qconf -Me "$w/exechost"; else quiet qconf -Ae "$w/exechost"; fi
  printf 'group_name @allhosts\nhostlist %s\n' "$NODE" > "$w/hostgroup"
  if qconf -shgrp @allhosts >/dev/null 2>&1; then quiet qconf -Mhgrp "$w/hostgroup"; else quiet qconf -Ahgrp "$w/hostgroup"; fi
  qconf -sp smp >/dev/null 2>&1 || quiet qconf -Ap /usr/share/gridengine/util/resources/pe/smp
  # queue: shell_start_mode posix_compliant (the default) runs every script with
  # the queue's shell and ignores its #! line; unix_behavior honours the #! line.
  qconf -sq > "$w/queue" # the template
  set_key "$w/queue" qname "$QUEUE"
  set_key "$w/queue" hostlist @allhosts
  set_key "$w/queue" load_thresholds NONE
  set_key "$w/queue" pe_list smp
  set_key "$w/queue" slots "$SLOTS"
  set_key "$w/queue" shell /bin/bash
  set_key "$w/queue" shell_start_mode unix_behavior
  # jobs submitted with -notify get SIGUSR2 (before SIGKILL) / SIGUSR1 (before
  # SIGSTOP) this long before the real signal (default 60 s); 5 s like Slurm's KillWait
  set_key "$w/queue" notify 00:00:05
  if qconf -sq "$QUEUE" >/dev/null 2>&1; then quiet qconf -Mq "$w/queue"; else quiet qconf -Aq "$w/queue"; fi
  rm -rf "$w"
}

start_execd() {
  if ! execd_alive; then
    log "starting sge_execd"
    setsid /usr/sbin/sge_execd  # setsid: own session, like the other daemons
  fi
}

# The queue instance line of `qstat -f`: "all.q@vm  BIP  0/0/4  0.01  lx-amd64  [states]"
queue_line() { qstat -f -q "$QUEUE@$NODE" 2>/dev/null | awk -v q="$QUEUE@$NODE" '$1 == q'; }
queue_usable() {
  local line
  line=$(queue_line)
  [ -n "$line" ] || return 1
  # load "-NA-" = execd not heard from yet; a 6th column = states (u, E, d, ...)
  echo "$line" | awk '$4 == "-NA-" || NF > 5 {exit 1}'
}

wait_queue() {
  local i line
  for ((i = 0; i < TIMEOUT * 5; i++)); do
    queue_usable && return 0
    line=$(queue_line)
    case "$(echo "$line" | awk '{print $6}')" in
      *E* | *d*) qmod -c "$QUEUE@$NODE" >/dev/null 2>&1 || true; qmod -e "$QUEUE@$NODE" >/dev/null 2>&1 || true ;;
    esac
    sleep 0.2
  done
  log "queue $QUEUE@$NODE not usable after ${TIMEOUT}s: '$(queue_line)'"
  tail -n 20 "$SPOOL/qmaster/messages" >&2 || true
  return 1
}

stop_pidfile() { # SIGTERM, wait up to 30 s, then SIGKILL
  local pf=$1 pid i
  pid_alive "$pf" || { rm -f "$pf"; return 0; }
  pid=$(cat "$pf")
  log "stopping $(cat "/proc/$pid/comm" 2>/dev/null || echo '?') (pid $pid)"
  kill "$pid" 2>/dev/null || true
  for ((i = 0; i < 150; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then log "pid $pid still alive, SIGKILL"; kill -9 "$pid" 2>/dev/null || true; fi
  rm -f "$pf"
}

# ------------------------------------------------------------------ commands
cmd_start() {
  ensure_packages
  setup_cell
  start_qmaster
  configure
  start_execd
  wait_queue || die "queue not usable"
  echo "SGE READY host=$NODE queue=$QUEUE slots=$SLOTS sge_qmaster=$(cat "$QMASTER_PID") sge_execd=$(cat $(execd_pidfiles) 2>/dev/null | head -n 1)"
}

cmd_stop() {
  if command -v qstat >/dev/null 2>&1 && pid_alive "$QMASTER_PID" && [ -n "$(qstat -u '*' 2>/dev/null)" ]; then
    log "deleting all jobs"
    qdel -f -u '*' >/dev/null 2>&1 || true
    wait_for 30 "jobs to go" bash -c '[ -z "$(qstat -u "*" 2>/dev/null)" ]' || true
  fi
  local pf
  for pf in $(execd_pidfiles); do stop_pidfile "$pf"; done
  stop_pidfile "$QMASTER_PID"
  echo "SGE STOPPED"
}

cmd_status() {
  local rc=0 pf
  if pid_alive "$QMASTER_PID"; then echo "sge_qmaster: running (pid $(cat "$QMASTER_PID"))"; else echo "sge_qmaster: not running"; rc=1; fi
  if execd_alive; then
    for pf in $(execd_pidfiles); do pid_alive "$pf" && echo "sge_execd: running (pid $(cat "$pf"))"; done
  else
    echo "sge_execd: not running"; rc=1
  fi
  if command -v qstat >/dev/null 2>&1 && queue_usable; then
    echo "queue $QUEUE@$NODE: usable, slots $(qconf -sq "$QUEUE" | awk '$1 == "slots" {print $2}')"
  else
    echo "queue $QUEUE@$NODE: not usable"; rc=1
  fi
  return $rc
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
