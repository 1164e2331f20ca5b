#!/usr/bin/env bash
# scripts/services/sshd.sh - throw-away OpenSSH servers on loopback for xqute's SSH tests.
#
# Debian 12, run as root, no systemd needed: every sshd is started by hand with its own
# config file, host key and pid file under one state dir. Key-only auth with a generated
# client key. Used by CI (.ci/run, on a fresh machine) and by test fixtures.
#
# Usage:
#   sshd.sh start   [NAME...]  start the servers (all by default). Idempotent: a server that is
#                              already running with the same config and answers is left alone.
#   sshd.sh stop    [NAME...]  stop servers (all by default): the listener AND its per-connection
#                              sshd processes (killing only the listener keeps open connections,
#                              e.g. ssh control masters, alive). Detached jobs started through
#                              ssh are NOT touched.
#   sshd.sh restart [NAME...]  stop + start
#   sshd.sh status  [NAME...]  one line per server; exit 0 if all given servers run, else 3
#   sshd.sh pause   NAME...    SIGSTOP listener + its sessions: the host "hangs" (TCP connects
#                              still succeed, nothing answers). Undo with: sshd.sh resume NAME
#   sshd.sh resume  NAME...    SIGCONT them again
#   sshd.sh block   NAME...    iptables DROP of packets to the server's ADDR:PORT on lo (a network
#                              partition: new connects time out, open connections go silent).
#                              Installs iptables if missing. Undo with: sshd.sh unblock NAME
#   sshd.sh unblock NAME...    remove that rule again (stop without names also removes them all)
#   sshd.sh env                print the path of env.sh (source it)
#
# Server names are h1, h2, ... in the order of XQUTE_SSHD_ADDRS.
#
# Environment (all optional):
#   XQUTE_SSHD_DIR          state dir                        default /tmp/xqute-sshd
#   XQUTE_SSHD_ADDRS        "ADDR:PORT ..." listeners        default "127.0.0.1:2222 127.0.0.2:2223"
#   XQUTE_SSHD_USER         also create this non-root login user (key-only)   default "" (none)
#   XQUTE_SSHD_MAXSESSIONS  sshd MaxSessions (channels per multiplexed connection;
#                           OpenSSH's default is 10)          default 64
#   XQUTE_SSHD_WAIT         seconds to wait for a server to answer           default 15
#
# Files in the state dir afterwards:
#   id_ed25519       client private key (0600)    known_hosts   host keys of h1, h2, ...
#   ssh_config       Host h1, h2 ... aliases, use: ssh -F DIR/ssh_config h1 'echo ok'
#   env.sh           source it: XQUTE_SSH_* variables (key, config, hosts, plain -o options)
#   sshd-NAME.conf / .pid / .log
set -euo pipefail

ACTION=${1:-start}
[ $# -gt 0 ] && shift
DIR=${XQUTE_SSHD_DIR:-/tmp/xqute-sshd}
ADDRS=${XQUTE_SSHD_ADDRS:-"127.0.0.1:2222 127.0.0.2:2223"}
XUSER=${XQUTE_SSHD_USER:-}
MAXSESS=${XQUTE_SSHD_MAXSESSIONS:-64}
WAIT=${XQUTE_SSHD_WAIT:-15}
APT="apt-get -o DPkg::Lock::Timeout=300"

log() { echo "[sshd.sh] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# --- server table: NAMES[i] ADDR_OF[name] PORT_OF[name] ---------------------------------
declare -a NAMES=()
declare -A ADDR_OF=() PORT_OF=()
i=0
for ap in $ADDRS; do
    i=$((i + 1))
    case "$ap" in *:*) ;; *) die "bad entry '$ap' in XQUTE_SSHD_ADDRS (want ADDR:PORT)";; esac
    NAMES+=("h$i"); ADDR_OF[h$i]=${ap%:*}; PORT_OF[h$i]=${ap##*:}
done
[ ${#NAMES[@]} -gt 0 ] || die "XQUTE_SSHD_ADDRS is empty"

# ssh options that work without any ssh_config (also exported in env.sh)
ssh_base_opts() {
    echo "-F /dev/null -i $DIR/id_ed25519 -o IdentitiesOnly=yes -o BatchMode=yes" \
         "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
}

pid_of() {   # prints the listener pid of server $1 if it runs (our config), else nothing
    local f=$DIR/sshd-$1.pid pid
    [ -s "$f" ] || return 0
    pid=$(cat "$f" 2>/dev/null) || return 0
    case "$pid" in ''|*[!0-9]*) return 0;; esac
    if kill -0 "$pid" 2>/dev/null && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q "sshd -f $DIR/sshd-$1.conf"; then
        echo "$pid"
    fi
}

session_pids() {   # sshd processes below listener $1 (one per connection + privsep children)
    ps -eo pid=,ppid=,comm= | awk -v root="$1" '
        { ppid[$1] = $2; comm[$1] = $3 }
        END {
            found[root] = 1; changed = 1
            while (changed) { changed = 0
                for (p in ppid) if (!(p in found) && (ppid[p] in found)) { found[p] = 1; changed = 1 } }
            for (p in found) if (p != root && comm[p] == "sshd") print p
        }'
}

answers() {   # server $1 accepts our key and runs a command
    # shellcheck disable=SC2046  # ssh_base_opts is a list of words on purpose
    timeout 10 ssh $(ssh_base_opts) -o ConnectTimeout=3 -p "${PORT_OF[$1]}" "root@${ADDR_OF[$1]}" true \
        >/dev/null 2>&1
}

port_session_pids() {   # sshd processes holding an established connection on server $1's address:port;
                        # also finds sessions orphaned by an earlier kill of the listener
    ss -Htnp state established "( sport = :${PORT_OF[$1]} )" src "${ADDR_OF[$1]}" 2>/dev/null \
        | grep -o '"sshd",pid=[0-9]*' | cut -d= -f2 | sort -u || true
}

stop_one() {
    local name=$1 pid sess i p
    pid=$(pid_of "$name")
    sess=$( { [ -n "$pid" ] && session_pids "$pid"; port_session_pids "$name"; } | sort -u | tr '\n' ' ')
    sess=${sess% }
    if [ -n "$pid" ] || [ -n "$sess" ]; then
        kill -CONT $pid $sess 2>/dev/null || true        # in case it was paused
        kill -TERM $pid $sess 2>/dev/null || true
        # bounded: 5 s (the listener takes about 1 s to exit after SIGTERM here)
        for i in $(seq 50); do
            local alive=""
            for p in $pid $sess; do kill -0 "$p" 2>/dev/null && alive=1; done
            [ -z "$alive" ] && break
            sleep 0.1
        done
        for p in $pid $sess; do kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null || true; done
        log "stopped $name (listener ${pid:-none}${sess:+, sessions $sess})"
    fi
    rm -f "$DIR/sshd-$name.pid"
}

signal_one() {   # $1 signal, $2 name
    local pid sess
    pid=$(pid_of "$2")
    [ -n "$pid" ] || die "$2 is not running"
    sess=$(session_pids "$pid")
    kill "-$1" "$pid" $sess
    log "sent SIG$1 to $2 (listener $pid${sess:+, sessions $(echo $sess)})"
}

select_names() {   # validate NAME args; sets SEL to them (or to all names)
    local n k ok
    SEL=()
    if [ $# -eq 0 ]; then SEL=("${NAMES[@]}"); return 0; fi
    for n in "$@"; do
        ok=""
        for k in "${NAMES[@]}"; do [ "$k" = "$n" ] && ok=1; done
        [ -n "$ok" ] || die "unknown server '$n' (known: ${NAMES[*]})"
        SEL+=("$n")
    done
}

fw_rule() {   # iptables rule spec for server $1
    echo "INPUT -i lo -p tcp -d ${ADDR_OF[$1]} --dport ${PORT_OF[$1]} -m comment --comment xqute-sshd-block -j DROP"
}

block_one() {
    if ! command -v iptables >/dev/null; then
        log "installing iptables"
        apt_install iptables || die "could not install iptables"
    fi
    # shellcheck disable=SC2046
    iptables -C $(fw_rule "$1") 2>/dev/null || iptables -I $(fw_rule "$1") || die "iptables failed"
    log "blocked $1 (${ADDR_OF[$1]}:${PORT_OF[$1]}): packets to it are dropped"
}

unblock_one() {
    local i
    command -v iptables >/dev/null || return 0
    for i in $(seq 20); do
        # shellcheck disable=SC2046
        iptables -D $(fw_rule "$1") 2>/dev/null || break
        [ "$i" = 1 ] && log "unblocked $1"
    done
    return 0
}

apt_install() {   # pkgs... ; with a temporary policy-rc.d so that no package starts its
                  # system service (sshd on :22, a dockerd with bridge + iptables) on a machine
                  # that has none (Debian docker images ship one; a plain install does not)
    local prc=/usr/sbin/policy-rc.d made="" rc=0
    if [ ! -e "$prc" ]; then printf '#!/bin/sh\nexit 101\n' > "$prc"; chmod 755 "$prc"; made=1; fi
    if ! DEBIAN_FRONTEND=noninteractive $APT install -y --no-install-recommends "$@" >/dev/null 2>&1; then
        timeout 300 $APT update >/dev/null 2>&1 || true
        DEBIAN_FRONTEND=noninteractive $APT install -y --no-install-recommends "$@" >/dev/null || rc=$?
    fi
    [ -n "$made" ] && rm -f "$prc"
    return $rc
}

install_packages() {
    if [ -x /usr/sbin/sshd ] && command -v ssh >/dev/null && command -v ssh-keygen >/dev/null \
       && command -v ps >/dev/null && command -v ss >/dev/null && command -v timeout >/dev/null; then
        return 0
    fi
    log "installing openssh-server openssh-client procps iproute2"
    apt_install openssh-server openssh-client procps iproute2 || die "apt-get install failed"
    [ -x /usr/sbin/sshd ] || die "sshd still missing after apt-get install"
}

write_conf() {   # name -> prints config text
    local name=$1
    cat <<EOF
# xqute test sshd '$name' (generated by scripts/services/sshd.sh; do not edit)
Port ${PORT_OF[$name]}
ListenAddress ${ADDR_OF[$name]}
HostKey $DIR/host_ed25519
PidFile $DIR/sshd-$name.pid
AuthorizedKeysFile $DIR/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
# no PAM: nothing like pam_systemd is set up on this box, and key auth needs none
UsePAM no
# the state dir may live under /tmp (mode 1777), which StrictModes would reject
StrictModes no
# mux channels per connection (ssh ControlMaster); OpenSSH's default is 10
MaxSessions $MAXSESS
# unauthenticated connections at once before sshd starts dropping them (default 10:30:100)
MaxStartups 100:30:200
LogLevel VERBOSE
PrintMotd no
PrintLastLog no
AcceptEnv LANG LC_* XQUTE_*
Subsystem sftp internal-sftp
EOF
}

start_one() {
    local name=$1 cfg=$DIR/sshd-$1.conf pid i
    write_conf "$name" > "$cfg.new"
    pid=$(pid_of "$name")
    if [ -n "$pid" ] && cmp -s "$cfg" "$cfg.new" && answers "$name"; then
        rm -f "$cfg.new"
        log "$name already running on ${ADDR_OF[$name]}:${PORT_OF[$name]} (pid $pid)"
        return 0
    fi
    [ -n "$pid" ] && stop_one "$name"
    mv "$cfg.new" "$cfg"
    /usr/sbin/sshd -t -f "$cfg" || die "sshd rejects $cfg"
    rm -f "$DIR/sshd-$name.pid"
    # Without -D, sshd binds, forks into the background, writes PidFile and the command
    # returns (exit != 0 e.g. when the port is taken). -E: log to a file, not syslog.
    if ! /usr/sbin/sshd -f "$cfg" -E "$DIR/sshd-$name.log" 9>&-; then   # 9>&-: not our lock
        tail -5 "$DIR/sshd-$name.log" >&2 || true
        die "sshd $name failed to start (port ${PORT_OF[$name]} taken?)"
    fi
    for i in $(seq $((WAIT * 10))); do
        if [ -n "$(pid_of "$name")" ] && answers "$name"; then
            log "$name up on ${ADDR_OF[$name]}:${PORT_OF[$name]} (pid $(pid_of "$name"))"
            return 0
        fi
        sleep 0.1
    done
    tail -20 "$DIR/sshd-$name.log" >&2 || true
    die "sshd $name on ${ADDR_OF[$name]}:${PORT_OF[$name]} did not answer within ${WAIT}s"
}

write_client_files() {
    local n hk
    hk=$(cut -d' ' -f1,2 "$DIR/host_ed25519.pub")
    {
        echo "# generated by scripts/services/sshd.sh -- use: ssh -F $DIR/ssh_config h1 CMD"
        for n in "${NAMES[@]}"; do
            printf 'Host %s\n  HostName %s\n  Port %s\n' "$n" "${ADDR_OF[$n]}" "${PORT_OF[$n]}"
        done
        cat <<EOF
Host *
  User root
  IdentityFile $DIR/id_ed25519
  IdentitiesOnly yes
  BatchMode yes
  StrictHostKeyChecking no
  UserKnownHostsFile /dev/null
  LogLevel ERROR
  ConnectTimeout 5
EOF
    } > "$DIR/ssh_config.tmp"
    mv "$DIR/ssh_config.tmp" "$DIR/ssh_config"
    for n in "${NAMES[@]}"; do
        echo "[${ADDR_OF[$n]}]:${PORT_OF[$n]} $hk"
    done > "$DIR/known_hosts"
    local hosts="" addrs=""
    for n in "${NAMES[@]}"; do hosts="$hosts $n"; addrs="$addrs root@${ADDR_OF[$n]}:${PORT_OF[$n]}"; done
    cat > "$DIR/env.sh.tmp" <<EOF
# generated by scripts/services/sshd.sh; source me
export XQUTE_SSHD_DIR='$DIR'
export XQUTE_SSH_KEY='$DIR/id_ed25519'
export XQUTE_SSH_CONFIG='$DIR/ssh_config'
export XQUTE_SSH_KNOWN_HOSTS='$DIR/known_hosts'
# aliases defined in XQUTE_SSH_CONFIG
export XQUTE_SSH_HOSTS='${hosts# }'
# the same servers as USER@ADDR:PORT
export XQUTE_SSH_ADDRS='${addrs# }'
# options for plain ssh without a config file: ssh \$XQUTE_SSH_OPTS -p 2222 root@127.0.0.1 CMD
export XQUTE_SSH_OPTS='$(ssh_base_opts)'
EOF
    mv "$DIR/env.sh.tmp" "$DIR/env.sh"
}

do_start() {
    local n f old
    [ "$(id -u)" = 0 ] || die "must run as root"
    install_packages
    mkdir -p "$DIR"; chmod 755 "$DIR"      # sshd reads authorized_keys as the login user
    [ -s "$DIR/host_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C xqute-test-host -f "$DIR/host_ed25519"
    [ -s "$DIR/id_ed25519" ]   || ssh-keygen -q -t ed25519 -N '' -C xqute-test-client -f "$DIR/id_ed25519"
    chmod 600 "$DIR/host_ed25519" "$DIR/id_ed25519"
    cp "$DIR/id_ed25519.pub" "$DIR/authorized_keys.tmp"; chmod 644 "$DIR/authorized_keys.tmp"
    mv "$DIR/authorized_keys.tmp" "$DIR/authorized_keys"
    mkdir -p /run/sshd; chmod 755 /run/sshd   # privilege separation dir (systemd makes it normally)
    if [ -n "$XUSER" ]; then
        id "$XUSER" >/dev/null 2>&1 || useradd -m -s /bin/bash "$XUSER"
        # useradd leaves the password field '!' (locked); without PAM sshd then refuses even
        # key logins ("User ... not allowed because account is locked"). '*' = no password, not locked.
        usermod -p '*' "$XUSER"
    fi
    # servers left over from an earlier, longer XQUTE_SSHD_ADDRS
    shopt -s nullglob
    for f in "$DIR"/sshd-*.pid; do
        old=${f##*/sshd-}; old=${old%.pid}
        case " ${NAMES[*]} " in *" $old "*) ;; *)
            if [ -n "$(pid_of "$old")" ]; then stop_one "$old"; else rm -f "$f"; fi;;
        esac
    done
    shopt -u nullglob
    write_client_files
    select_names "$@"; for n in "${SEL[@]}"; do start_one "$n"; done
    ssh -F "$DIR/ssh_config" "${NAMES[0]}" true || die "final check through ssh_config failed"
    if [ -n "$XUSER" ]; then
        ssh -F "$DIR/ssh_config" -l "$XUSER" "${NAMES[0]}" true || die "login as $XUSER failed"
    fi
    log "ready: $(for n in "${NAMES[@]}"; do printf '%s=%s:%s ' "$n" "${ADDR_OF[$n]}" "${PORT_OF[$n]}"; done)"
    log "source $DIR/env.sh; try: ssh -F $DIR/ssh_config h1 'echo ok'"
}

do_status() {
    local n pid rc=0
    select_names "$@"; for n in "${SEL[@]}"; do
        pid=$(pid_of "$n")
        if [ -z "$pid" ]; then
            echo "$n ${ADDR_OF[$n]}:${PORT_OF[$n]} stopped"; rc=3
        elif grep -q '^State:.*T' "/proc/$pid/status" 2>/dev/null; then
            echo "$n ${ADDR_OF[$n]}:${PORT_OF[$n]} paused pid=$pid"; rc=3
        else
            echo "$n ${ADDR_OF[$n]}:${PORT_OF[$n]} running pid=$pid"
        fi
    done
    return $rc
}

case "$ACTION" in
    start|stop|restart|pause|resume|block|unblock)
        # one mutating call at a time (CI and parallel test fixtures may call start together)
        mkdir -p "$DIR"
        exec 9> "$DIR/.lock"
        flock -w 120 9 || die "another sshd.sh holds $DIR/.lock for 120 s" ;;
esac

case "$ACTION" in
    start)   do_start "$@" ;;
    stop)
        select_names "$@"; for n in "${SEL[@]}"; do stop_one "$n"; unblock_one "$n"; done
        if [ $# -eq 0 ]; then rm -f "$DIR"/cm-* 2>/dev/null || true; fi ;;
    restart)
        select_names "$@"; for n in "${SEL[@]}"; do stop_one "$n"; done
        do_start "$@" ;;
    status)  do_status "$@" ;;
    pause|resume)
        [ $# -gt 0 ] || die "$ACTION needs server names (${NAMES[*]})"
        sig=STOP; [ "$ACTION" = resume ] && sig=CONT
        select_names "$@"; for n in "${SEL[@]}"; do signal_one "$sig" "$n"; done ;;
    block|unblock)
        [ $# -gt 0 ] || die "$ACTION needs server names (${NAMES[*]})"
        select_names "$@"; for n in "${SEL[@]}"; do "${ACTION}_one" "$n"; done ;;
    env)     echo "$DIR/env.sh" ;;
    -h|--help|help) sed -n '2,/^set -euo/p' "$0" | sed '$d' ;;
    *) die "unknown action '$ACTION' (start|stop|restart|status|pause|resume|block|unblock|env)" ;;
esac
