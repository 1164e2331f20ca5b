#!/usr/bin/env bash
# Capture real HTCondor command output into tests/data/htcondor/ (one file per
# scenario, layout in tests/data/README.md). Needs the pool of
# scripts/services/htcondor.sh (run as root: the condor_* wrappers it installs
# run the tools as the pool's submit user). Takes about 1.5 minutes. Stops the
# schedd for a few seconds on purpose.
#
#   scripts/capture/htcondor.sh [OUT_DIR]     (default: tests/data/htcondor)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
export CAP_DIR=${1:-$REPO/tests/data/htcondor}
# shellcheck source=lib.sh
. "$HERE/lib.sh"
SHARED=${HTCONDOR_SHARED:-/tmp/xqute-htcondor}
STATE=${HTCONDOR_STATE:-/var/lib/xqute-htcondor}
W=$SHARED/capture # HTCondor opens output/error/log as the submit user: a 1777 folder
rm -rf "$W"; mkdir -p "$W"; chmod 1777 "$W"; cd "$W"
# the same attributes the backend asks for
Q_ATTRS=ClusterId,ProcId,JobStatus,HoldReasonCode,HoldReasonSubCode,HoldReason
H_ATTRS=ClusterId,ProcId,JobStatus,ExitCode,ExitBySignal,ExitSignal,RemoveReason,HoldReasonCode,HoldReasonSubCode,HoldReason,LastJobStatus,LastHoldReasonCode,LastHoldReasonSubCode,LastHoldReason

# $ADMIN CMD...: a tool run as root where HTCondor is installed (not through the wrappers)
if [ -x /usr/sbin/condor_master ]; then ADMIN="env"; else ADMIN="chroot $STATE/root"; fi

bash "$REPO/scripts/services/htcondor.sh" status >/dev/null || { say "pool not running"; exit 1; }

# ------------------------------------------------------------------ job scripts
printf '#!/bin/bash\necho "hello from $_CONDOR_SLOT"\n' >ok.sh
printf '#!/bin/bash\necho about to fail >&2\nexit 3\n' >fail.sh
printf '#!/bin/bash\necho killing myself\nkill -KILL $$\n' >sig.sh
printf '#!/bin/bash\nsleep "${1:-60}"\n' >sleep.sh
printf '#!/bin/bash\n[ "$1" = 1 ] && exit 3\nsleep 2\n' >arr.sh
cat >env.sh <<'EOF'
#!/bin/bash
read -r -a stat </proc/$$/stat
echo "pid=$$ ppid=${stat[3]} pgid=${stat[4]} sid=${stat[5]} uid=$(id -u) cwd=$PWD args=$#"
env | grep -E '^(_CONDOR_(JOB_IWD|SCRATCH_DIR|SLOT|JOB_AD)|BATCH_SYSTEM|HOME|USER|TMPDIR|XQ_FROM_DRIVER|PATH)=' | sort
EOF
cat >traps.sh <<'EOF'
#!/bin/bash
for s in TERM INT HUP USR1 USR2 QUIT CONT; do trap "echo \"got $s at \$(date +%s.%N)\"" $s; done
trap 'echo "EXIT at $(date +%s.%N)"' EXIT
echo "started at $(date +%s.%N)"
while :; do sleep 0.2; done
EOF
chmod +x ./*.sh

# submit NAME SCRIPT [LINE ...]: a command line submitting one job of SCRIPT
# the way the backend does: the description as -a lines, -queue N, no file; with a
# job event log ("log"), without which allowed_execute_duration was not enforced
submit() {
  local name=$1 script=$2; shift 2
  printf "condor_submit -terse -a 'executable = %s' -a 'should_transfer_files = NO'" "$W/$script"
  printf " -a 'output = %s' -a 'error = %s' -a 'log = %s' -a 'batch_name = %s'" "$W/$name.out" "$W/$name.err" "$W/$name.log" "$name"
  local a; for a in "$@"; do printf " -a %q" "$a"; done
  printf ' -queue %s' "${QUEUE:-1}"
}
first() { echo "${1%% *}"; } # "12.0 - 12.0" -> 12.0
cluster() { local f; f=$(first "$1"); echo "${f%%.*}"; }
status() { condor_q "$1" -af JobStatus 2>/dev/null; }
is_status() { [ "$(status "$1")" = "$2" ]; }
gone() { [ -z "$(status "$1")" ]; }
in_history() { [ -n "$(condor_history "$1" -af JobStatus 2>/dev/null)" ]; }

# ------------------------------------------------------------------ submit
OK=$(cluster "$(cap submit_terse "$(submit ok ok.sh)" "ok.sh echoes; -terse prints 'FIRST - LAST' (C.P ids)")")
ARR=$(cluster "$(QUEUE=3 cap submit_terse_array "$(QUEUE=3 submit arr arr.sh 'arguments = $(ProcId)')" \
  "queue 3: one cluster, procs 0-2; arr.sh gets its ProcId as argument, proc 1 exits 3")")
FAIL=$(cap submit_plain "$(submit fail fail.sh | sed 's/ -terse//')" "fail.sh exits 3; without -terse" \
  | sed -n 's/.*submitted to cluster \([0-9]*\)\..*/\1/p')
SIG=$(cluster "$(bash -c "$(submit sig sig.sh)")")
ENVJ=$(cluster "$(XQ_FROM_DRIVER='a b' bash -c "$(submit env env.sh 'getenv = true')")")
cap submit_missing_executable "$(submit missing does-not-exist.sh)" "the executable does not exist" >/dev/null
BADVAL=$(cluster "$(cap submit_bad_value "$(submit badval ok.sh 'request_memory = lots')" \
  "request_memory = lots: accepted, and the job never matches")")
cap submit_bad_line "$(submit badline ok.sh 'just words')" "a line that is not 'name = value'" >/dev/null
cap submit_as_root "$ADMIN $(submit root ok.sh)" \
  "the real condor_submit run by root (not through the wrapper): HTCondor refuses root" >/dev/null
cap submit_arguments_with_queue_file "$(submit qf ok.sh) /dev/null" \
  "-queue N followed by a submit file name: -queue takes the rest as its arguments" >/dev/null

# hostile values, each in batch_name (a plain string command) and in a ClassAd string
# attribute (+XqAttr); submitted on hold, then read back
HOSTILE=('dollar$x' 'two$$(Owner)' 'macro$(Owner)' 'dollarmacro$(DOLLAR)(Owner)' 'env$ENV(HOME)'
  'hash#x' '# lead' "quotes \"d\" 's'" 'back\slash' 'trail\' '  padded  ' 'semi;|&<>`x`')
ids=() notes=()
for v in "${HOSTILE[@]}"; do
  out=$(condor_submit -terse -a "executable = $W/ok.sh" -a 'hold = true' -a "batch_name = $v" \
    -a "+XqAttr = \"$v\"" -queue 1 2>&1 || true)
  id=$(first "$out")
  case "$id" in [0-9]*.[0-9]*) ids+=("$id"); notes+=("$id: batch_name = $v  /  +XqAttr = \"$v\"") ;;
    *) notes+=("REJECTED: $v -> $(echo "$out" | tr '\n' ' ')") ;; esac
done
cap q_json_hostile_values "condor_q ${ids[*]} -json -attributes ClusterId,JobBatchName,XqAttr" \
  "values given on the submit line (-a), each job submitted with hold = true:" "${notes[@]}" >/dev/null
condor_rm "${ids[@]}" >/dev/null

# ------------------------------------------------------------------ in the queue
RUN=$(cluster "$(bash -c "$(submit run sleep.sh)")")
IDLE=$(cluster "$(bash -c "$(submit idle sleep.sh 'request_cpus = 64')")")
# the backend's time limit: allowed_execute_duration (HTCondor's own, HoldReasonCode
# 47) was not enforced reliably here (see docs/backends/htcondor.md), so also a
# periodic_hold with HoldReasonSubCode 47 (HoldReasonCode 3: JobPolicy)
TO=$(cluster "$(bash -c "$(submit timeout sleep.sh 'allowed_execute_duration = 2' \
  'periodic_hold = JobStatus == 2 && time() - JobCurrentStartExecutingDate > 2' \
  'periodic_hold_reason = "time limit of 2s exceeded"' 'periodic_hold_subcode = 47')")")
# a hold xqute cannot fix: the starter cannot open the output file (an executable
# that cannot run is not held on this pool: its job wrapper runs it, exit 127)
BADX=$(cluster "$(condor_submit -terse -a "executable = $W/ok.sh" -a 'should_transfer_files = NO' \
  -a 'output = /nonexistent/dir/x.out' -a 'batch_name = badout' -queue 1)")
UHOLD=$(cluster "$(bash -c "$(submit uhold sleep.sh)")")
SUBHOLD=$(cluster "$(bash -c "$(submit subhold sleep.sh 'hold = true')")")
TRAPS=$(cluster "$(bash -c "$(submit traps traps.sh 'job_max_vacate_time = 5')")")
wait_until 60 is_status "$RUN" 2
wait_until 60 is_status "$UHOLD" 2
wait_until 60 is_status "$TRAPS" 2
condor_hold "$UHOLD" >/dev/null
wait_until 60 is_status "$TO" 5
wait_until 60 is_status "$BADX" 5
wait_until 60 is_status "$UHOLD" 5
NOTE="ids: OK=$OK ARR=$ARR(queue 3, proc 1 exits 3) FAIL=$FAIL(exit 3) SIG=$SIG(kill -KILL \$\$) ENV=$ENVJ RUN=$RUN(sleep 60, running) IDLE=$IDLE(request_cpus = 64: never matches) TO=$TO(allowed_execute_duration = 2 + periodic_hold after 2 s, subcode 47) BADX=$BADX(output = /nonexistent/dir/x.out) UHOLD=$UHOLD(condor_hold while running) SUBHOLD=$SUBHOLD(hold = true) TRAPS=$TRAPS(running, traps signals, job_max_vacate_time = 5)"
LIVE="$RUN $IDLE $TO $BADX $UHOLD $SUBHOLD $TRAPS"
cap q_json "condor_q $OK $ARR $FAIL $SIG $LIVE 99999 -json -attributes $Q_ATTRS" "$NOTE" \
  "99999 never existed; jobs that finished have left the queue" >/dev/null
cap q_af "condor_q $LIVE -af:j JobStatus HoldReasonCode HoldReason" "$NOTE" >/dev/null
cap q_unknown "condor_q 99999 -json -attributes $Q_ATTRS" "an id that never existed" >/dev/null
cap q_proc_ids "condor_q $RUN.0 $TO.0 99999.0 -json -attributes $Q_ATTRS" "CLUSTER.PROC ids" >/dev/null
cap q_default "condor_q" "no options: the submit user's jobs, a summary" >/dev/null
cap rm_several "condor_rm $RUN $IDLE $TO.0 $BADX $UHOLD $SUBHOLD" \
  "RUN (running) IDLE (idle) TO (held, code 47) BADX (held, code 7: output file) UHOLD (held by condor_hold) SUBHOLD (submitted on hold)" >/dev/null
cap rm_traps "condor_rm $TRAPS" "TRAPS=$TRAPS: running, traps and reports every signal (see cat_traps_out)" >/dev/null
sleep 12
cap cat_traps_out "cat $W/traps.out" "what traps.sh saw after condor_rm at $(date +%s.%N) - 12 s" >/dev/null
cap rm_finished "condor_rm $OK" "OK=$OK completed" >/dev/null
cap rm_unknown "condor_rm 99999" "never existed" >/dev/null
LIVE2=$(cluster "$(bash -c "$(submit live2 sleep.sh)")")
cap rm_finished_and_live "condor_rm $OK $LIVE2" "OK=$OK completed, LIVE2=$LIVE2 idle or running" >/dev/null
cap q_after_rm_finished_and_live "condor_q $LIVE2 -json -attributes $Q_ATTRS" "was LIVE2 removed all the same?" >/dev/null

# ------------------------------------------------------------------ history
for id in $OK $ARR $FAIL $SIG $RUN $IDLE $TO $BADX $UHOLD $TRAPS $LIVE2; do wait_until 60 gone "$id"; done
wait_until 30 in_history "$LIVE2"
ALL="$OK $ARR $FAIL $SIG $RUN $IDLE $TO $BADX $UHOLD $SUBHOLD $TRAPS $LIVE2"
cap history_json "condor_history $ALL 99999 -json -attributes $H_ATTRS" "$NOTE" "LIVE2=$LIVE2(removed)" "99999 never existed" >/dev/null
cap history_af "condor_history $ALL -af:j JobStatus ExitCode ExitBySignal ExitSignal HoldReasonCode RemoveReason" "$NOTE" >/dev/null
cap history_unknown "condor_history 99999 -json -attributes $H_ATTRS" "never existed" >/dev/null
cap history_array_proc "condor_history $ARR.1 -json -attributes $H_ATTRS" "one proc of the array" >/dev/null
cap history_match_limit "condor_history $OK $FAIL -limit 1 -json -attributes $H_ATTRS" "-limit 1 (alias -match): stops after one ad" >/dev/null
cap cat_env_out "cat $W/env.out" "ENV=$ENVJ: getenv = true, submitted with XQ_FROM_DRIVER='a b' in the environment" >/dev/null
cap cat_sig_out "cat $W/sig.out $W/sig.err" >/dev/null

# ------------------------------------------------------------------ schedd down
say "stopping the schedd for a moment"
$ADMIN condor_off -daemon schedd >/dev/null
wait_until 30 bash -c '! condor_q -totals >/dev/null 2>&1'
cap submit_schedd_down "$(submit down ok.sh)" "the schedd is stopped" >/dev/null
cap q_schedd_down "condor_q $OK -json -attributes $Q_ATTRS" "the schedd is stopped" >/dev/null
cap rm_schedd_down "condor_rm $OK" "the schedd is stopped" >/dev/null
cap history_schedd_down "condor_history $OK -json -attributes $H_ATTRS" "the schedd is stopped: condor_history reads the history file itself" >/dev/null
$ADMIN condor_on -daemon schedd >/dev/null
wait_until 60 bash -c 'condor_q -totals >/dev/null 2>&1'
condor_rm "$BADVAL" >/dev/null
rm -rf "$W"
say "done: $(ls "$CAP_DIR" | wc -l) files in $CAP_DIR"
