#!/usr/bin/env bash
# Single-node Slurm cluster for xqute's tests (Debian 12, run as root, no systemd).
#
#   scripts/services/slurm.sh start    install what is missing, write the config,
#                                      start munged, MariaDB, slurmdbd, slurmctld,
#                                      slurmd (only those not running), wait until
#                                      the node takes jobs, print one "SLURM READY" line
#   scripts/services/slurm.sh stop     cancel all jobs, stop the daemons (pidfiles only)
#   scripts/services/slurm.sh status   print what runs; rc 0 if the node takes jobs
#
# Idempotent: "start" on a running cluster with an unchanged config only checks it.
#
# Environment knobs (defaults in brackets):
#   SLURM_CPUS            CPUs the node advertises [8]; may exceed the real count
#                         (SlurmdParameters=config_overrides), so tests can run in parallel
#   SLURM_MIN_JOB_AGE     seconds a finished job stays visible to squeue/scontrol [60]
#   SLURM_KILL_WAIT       seconds between SIGTERM and SIGKILL on cancel/timeout [5]
#   SLURM_ENFORCE_MEMORY  1: kill a job whose RSS exceeds --mem (jobacct polling every
#                         2 s, no cgroups here; the job ends FAILED/OUT_OF_MEMORY, see
#                         docs/notes/clusters.md) [1]
#   SLURM_READY_TIMEOUT   seconds to wait for each daemon / the node [120]
#
# Facts: partition "debug" (the default), cluster "local", node = `hostname -s`.
# Logs: /var/log/slurm/{slurmctld,slurmd,slurmdbd,mariadb}.log
set -euo pipefail

CPUS=${SLURM_CPUS:-8}
MIN_JOB_AGE=${SLURM_MIN_JOB_AGE:-60}
KILL_WAIT=${SLURM_KILL_WAIT:-5}
ENFORCE_MEMORY=${SLURM_ENFORCE_MEMORY:-1}
TIMEOUT=${SLURM_READY_TIMEOUT:-120}
NODE=$(hostname -s)
LOGDIR=/var/log/slurm
CONF=/etc/slurm/slurm.conf
DBD_CONF=/etc/slurm/slurmdbd.conf
PARTITION=debug
CLUSTER=local

log() { echo "[slurm.sh] $(date +%T) $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
pid_alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# wait_for SECONDS DESCRIPTION CMD...: poll CMD every 0.2 s, bounded
wait_for() {
  local secs=$1 what=$2; shift 2
  local tries=$((secs * 5)) i
  for ((i = 0; i < tries; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  log "timed out after ${secs}s waiting for $what"
  return 1
}

# ------------------------------------------------------------------ install
ensure_packages() {
  local pkgs=(munge slurm-client slurmctld slurmd slurmdbd mariadb-server) missing=() p
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  local apt=(apt-get -o DPkg::Lock::Timeout=600 -y --no-install-recommends install)
  if ! "${apt[@]}" "${missing[@]}" >/tmp/xqute-slurm-apt.log 2>&1; then
    log "install failed, running apt-get update and retrying"
    apt-get -o DPkg::Lock::Timeout=600 update >>/tmp/xqute-slurm-apt.log 2>&1 || true
    "${apt[@]}" "${missing[@]}" >>/tmp/xqute-slurm-apt.log 2>&1 \
      || { tail -n 30 /tmp/xqute-slurm-apt.log >&2; die "apt-get install failed"; }
  fi
}

# ------------------------------------------------------------------ munge
start_munge() {
  if [ ! -s /etc/munge/munge.key ]; then
    log "creating /etc/munge/munge.key"
    install -d -m 700 /etc/munge
    head -c 1024 /dev/urandom > /etc/munge/munge.key
  fi
  chown -R munge:munge /etc/munge
  chmod 700 /etc/munge
  chmod 400 /etc/munge/munge.key
  install -d -o munge -g munge -m 755 /run/munge
  install -d -o munge -g munge -m 700 /var/log/munge
  install -d -o munge -g munge -m 711 /var/lib/munge
  if ! pid_alive /run/munge/munged.pid; then
    log "starting munged"
    rm -f /run/munge/munged.pid /run/munge/munge.socket.2 /run/munge/munge.socket.2.lock
    runuser -u munge -- /usr/sbin/munged
  fi
  wait_for 30 "munge round trip" sh -c 'munge -n </dev/null | unmunge' || die "munge does not work"
}

# ------------------------------------------------------------------ config
# Prints the wanted slurm.conf on stdout.
render_conf() {
  local realmem
  realmem=$(slurmd -C | tr ' ' '\n' | sed -n 's/^RealMemory=//p')
  [ -n "$realmem" ] || die "slurmd -C gave no RealMemory"
  local mem=$((realmem * 90 / 100)) # RealMemory above the real value makes the node INVAL
  cat <<EOF
# Written by xqute scripts/services/slurm.sh: single-node test cluster.
ClusterName=$CLUSTER
SlurmctldHost=$NODE
SlurmUser=slurm
AuthType=auth/munge
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOGDIR/slurmctld.log
SlurmdLogFile=$LOGDIR/slurmd.log
# No systemd and no cgroup hierarchy we may use: track processes by parentage.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=6819
JobAcctGatherType=jobacct_gather/linux
EOF
  if [ "$ENFORCE_MEMORY" = 1 ]; then
    printf '%s\n' "JobAcctGatherFrequency=2" "JobAcctGatherParams=OverMemoryKill"
  else
    printf '%s\n' "JobAcctGatherFrequency=30"
  fi
  cat <<EOF
JobCompType=jobcomp/none
SchedulerType=sched/backfill
# The default batch_sched_delay=3 adds ~3 s to every trivial job.
SchedulerParameters=batch_sched_delay=0,sched_min_interval=100000
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Without a default a job with no --mem takes the whole node's memory and jobs
# run one at a time.
DefMemPerCPU=1024
SlurmdParameters=config_overrides
ReturnToService=2
# Finished jobs stay visible to squeue -t all / scontrol for this many seconds.
MinJobAge=$MIN_JOB_AGE
# Seconds between SIGTERM and SIGKILL when a job is cancelled or times out.
KillWait=$KILL_WAIT
InactiveLimit=0
Waittime=0
MailProg=/bin/true
NodeName=$NODE CPUs=$CPUS RealMemory=$mem State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
}

# Sets CONF_CHANGED=1 when slurm.conf had to be (re)written.
write_conf() {
  install -d -o slurm -g slurm -m 755 /var/lib/slurm /var/lib/slurm/slurmctld /var/lib/slurm/slurmd "$LOGDIR"
  install -d -m 755 /etc/slurm
  local new
  new=$(mktemp /etc/slurm/.slurm.conf.XXXXXX)
  render_conf > "$new"
  chmod 644 "$new"
  if cmp -s "$new" "$CONF"; then
    rm -f "$new"; CONF_CHANGED=0
  else
    mv "$new" "$CONF"; CONF_CHANGED=1
    log "wrote $CONF (cpus=$CPUS min_job_age=$MIN_JOB_AGE kill_wait=$KILL_WAIT enforce_memory=$ENFORCE_MEMORY)"
  fi
  cat > "$DBD_CONF" <<EOF
# Written by xqute scripts/services/slurm.sh
AuthType=auth/munge
DbdHost=localhost
DbdPort=6819
SlurmUser=slurm
LogFile=$LOGDIR/slurmdbd.log
PidFile=/run/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=xqute-test
StorageLoc=slurm_acct_db
EOF
  chown slurm:slurm "$DBD_CONF"
  chmod 600 "$DBD_CONF"
}

# ------------------------------------------------------------------ accounting
start_accounting() {
  install -d -o mysql -g mysql -m 755 /run/mysqld
  if ! mariadb -e 'select 1' >/dev/null 2>&1; then
    if [ ! -d /var/lib/mysql/mysql ]; then
      log "initialising MariaDB data directory"
      mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/tmp/xqute-mariadb-init.log 2>&1 \
        || { tail -n 20 /tmp/xqute-mariadb-init.log >&2; die "mariadb-install-db failed"; }
    fi
    log "starting mariadbd"
    # setsid: its own session, so that killing the caller's process group spares it
    setsid nohup /usr/sbin/mariadbd --user=mysql --bind-address=127.0.0.1 \
      --pid-file=/run/mysqld/mysqld.pid --innodb-lock-wait-timeout=900 \
      >>"$LOGDIR/mariadb.log" 2>&1 </dev/null &
    wait_for "$TIMEOUT" "MariaDB" mariadb -e 'select 1' \
      || { tail -n 20 "$LOGDIR/mariadb.log" >&2; die "MariaDB did not start"; }
  fi
  mariadb -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
    CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'xqute-test';
    ALTER USER 'slurm'@'localhost' IDENTIFIED BY 'xqute-test';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
    FLUSH PRIVILEGES;"
  if ! pid_alive /run/slurmdbd.pid; then
    log "starting slurmdbd"
    /usr/sbin/slurmdbd
  fi
  wait_for "$TIMEOUT" "slurmdbd on port 6819" bash -c 'exec 3<>/dev/tcp/127.0.0.1/6819' \
    || { tail -n 20 "$LOGDIR/slurmdbd.log" >&2; die "slurmdbd did not start"; }
}

# ------------------------------------------------------------------ slurmctld / slurmd
# start_daemon NAME PIDFILE: start it, or restart it when the config changed
start_daemon() {
  local name=$1 pidfile=$2
  if pid_alive "$pidfile"; then
    [ "$CONF_CHANGED" = 1 ] || return 0
    log "config changed: restarting $name"
    stop_pidfile "$pidfile"
  fi
  log "starting $name"
  "/usr/sbin/$name"
  wait_for 30 "$name pidfile" pid_alive "$pidfile" || die "$name did not start (see $LOGDIR/$name.log)"
}

node_state() { sinfo -h -n "$NODE" -o '%T' 2>/dev/null; }

node_usable() {
  case "$(node_state)" in idle | mixed | allocated | completing) return 0 ;; esac
  return 1
}

wait_node() {
  local i state=""
  for ((i = 0; i < TIMEOUT * 5; i++)); do
    state=$(node_state || true)
    case "$state" in
      idle | mixed | allocated | completing) return 0 ;;
      down* | drain* | fail*) scontrol update nodename="$NODE" state=resume >/dev/null 2>&1 || true ;;
    esac
    sleep 0.2
  done
  log "node $NODE not usable after ${TIMEOUT}s (state '$state')"
  tail -n 20 "$LOGDIR/slurmctld.log" "$LOGDIR/slurmd.log" >&2 || true
  return 1
}

# ------------------------------------------------------------------ stop helpers
# stop_pidfile PIDFILE...: SIGTERM, wait up to 30 s, then SIGKILL
stop_pidfile() {
  local pf pid pids=() i left
  for pf in "$@"; do
    pid_alive "$pf" || { rm -f "$pf"; continue; }
    pid=$(cat "$pf")
    log "stopping $(cat "/proc/$pid/comm" 2>/dev/null || echo '?') (pid $pid)"
    kill "$pid" 2>/dev/null || true
    pids+=("$pid")
  done
  [ ${#pids[@]} -eq 0 ] && return 0
  for ((i = 0; i < 150; i++)); do
    left=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && left=1; done
    [ $left = 0 ] && break
    sleep 0.2
  done
  for pid in "${pids[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then log "pid $pid still alive, SIGKILL"; kill -9 "$pid" 2>/dev/null || true; fi
  done
  rm -f "$@"
}

# ------------------------------------------------------------------ commands
cmd_start() {
  ensure_packages
  start_munge
  write_conf
  start_accounting
  start_daemon slurmctld /run/slurmctld.pid
  start_daemon slurmd /run/slurmd.pid
  wait_node || die "node not usable"
  # slurmctld registers the cluster with slurmdbd on its first connection
  wait_for "$TIMEOUT" "cluster '$CLUSTER' in slurmdbd" \
    bash -c "sacctmgr -n -P list cluster format=cluster | grep -qx '$CLUSTER'" \
    || die "cluster not registered in slurmdbd"
  echo "SLURM READY node=$NODE partition=$PARTITION cpus=$(sinfo -h -n "$NODE" -o '%c') state=$(node_state) min_job_age=$MIN_JOB_AGE kill_wait=$KILL_WAIT enforce_memory=$ENFORCE_MEMORY"
}

cmd_stop() {
  if command -v squeue >/dev/null 2>&1 && pid_alive /run/slurmctld.pid; then
    local jobs
    jobs=$(squeue -h -o '%A' 2>/dev/null | sort -u | tr '\n' ' ' || true)
    if [ -n "${jobs// /}" ]; then
      log "cancelling jobs: $jobs"
      # shellcheck disable=SC2086
      scancel $jobs >/dev/null 2>&1 || true
      wait_for 30 "jobs to leave the node" bash -c '[ -z "$(squeue -h -o %A 2>/dev/null)" ]' || true
    fi
  fi
  stop_pidfile /run/slurmd.pid /run/slurmctld.pid
  stop_pidfile /run/slurmdbd.pid
  stop_pidfile /run/mysqld/mysqld.pid
  stop_pidfile /run/munge/munged.pid
  echo "SLURM STOPPED"
}

cmd_status() {
  local name pf rc=0
  for name in munged:/run/munge/munged.pid mariadbd:/run/mysqld/mysqld.pid \
    slurmdbd:/run/slurmdbd.pid slurmctld:/run/slurmctld.pid slurmd:/run/slurmd.pid; do
    pf=${name#*:}
    if pid_alive "$pf"; then echo "${name%%:*}: running (pid $(cat "$pf"))"; else echo "${name%%:*}: not running"; rc=1; fi
  done
  if command -v sinfo >/dev/null 2>&1 && node_usable; then
    echo "node $NODE: $(node_state), partition $PARTITION, cpus $(sinfo -h -n "$NODE" -o '%c')"
  else
    echo "node $NODE: not usable"; rc=1
  fi
  return $rc
}

CONF_CHANGED=0
case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
