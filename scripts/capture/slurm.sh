#!/usr/bin/env bash
# Capture real Slurm command output into tests/data/slurm/ (one file per scenario,
# layout in tests/data/README.md). Needs the cluster of scripts/services/slurm.sh
# with its defaults (8 CPUs, MinJobAge=60). Takes about 2.5 minutes (the TIMEOUT
# job needs --time=1 to pass). Stops slurmctld for a few seconds on purpose.
#
#   scripts/capture/slurm.sh [OUT_DIR]     (default: tests/data/slurm)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
export CAP_DIR=${1:-$ROOT/tests/data/slurm}
# shellcheck source=lib.sh
. "$HERE/lib.sh"
W=/tmp/xqute-capture-slurm
rm -rf "$W"; mkdir -p "$W"; cd "$W"
FMT='%i|%A|%F|%K|%t|%T|%r'
SACCT_FMT=JobID,JobIDRaw,State,ExitCode,DerivedExitCode,Reason

state() { squeue -h -t all -j "$1" -o %T 2>/dev/null; }
is_state() { [ "$(state "$1")" = "$2" ]; }
finished() { case "$(state "$1")" in PENDING | RUNNING | CONFIGURING | COMPLETING | "") return 1 ;; esac; }
in_sacct_final() { # every line of sacct -X for the ids is in a final state
  local out
  out=$(sacct -X -n -P -o State -j "$1")
  [ -n "$out" ] && ! echo "$out" | grep -qE 'PENDING|RUNNING|REQUEUED|SUSPENDED'
}

bash "$ROOT/scripts/services/slurm.sh" status >/dev/null || { say "cluster not running"; exit 1; }
[ "$(sinfo -h -o %c)" -ge 8 ] || { say "need 8 CPUs (SLURM_CPUS)"; exit 1; }

# ------------------------------------------------------------------ job scripts
cat > ok.sh <<'EOF'
#!/bin/bash
echo "hello from $SLURM_JOB_ID"
EOF
printf '#!/bin/bash\necho about to fail >&2\nexit 3\n' > fail.sh
printf '#!/bin/bash\necho killing myself\nkill -KILL $$\n' > sig.sh
printf '#!/bin/bash\npython3 -c "b = b\\"x\\" * (400 * 1024 * 1024); import time; time.sleep(20)"\n' > mem.sh
cat > arr.sh <<'EOF'
#!/bin/bash
echo "task $SLURM_ARRAY_TASK_ID of $SLURM_ARRAY_JOB_ID"
[ "$SLURM_ARRAY_TASK_ID" = 2 ] && exit 3
exit 0
EOF
cat > directives.sh <<EOF
#!/bin/bash
#SBATCH --partition=debug
#SBATCH --time=00:03:00
#SBATCH --mem=64M
#SBATCH --cpus-per-task=2
#SBATCH --job-name="xq job 'one'"
#SBATCH --output=$W/dir-%j.out
#SBATCH --error=$W/dir-%j.err
#SBATCH --chdir=$W
sleep 40
EOF

# ------------------------------------------------------------------ stage A: outcomes
TO=$(cap sbatch_parsable_timeout_job "sbatch --parsable --time=1 -o $W/to.out -e $W/to.err --wrap 'sleep 120'" \
  "a job that will hit its 1-minute time limit")
say "timeout job $TO submitted; it ends about 60-90 s from now"
OK=$(cap sbatch_parsable "sbatch --parsable -o $W/ok.out $W/ok.sh")
FAIL=$(sbatch --parsable -o "$W/fail.out" fail.sh)
SIG=$(sbatch --parsable -o "$W/sig.out" sig.sh)
MEM=$(sbatch --parsable --mem=50M -o "$W/mem.out" mem.sh)
ARR=$(cap sbatch_parsable_array "sbatch --parsable --array=1-3 -o $W/arr-%A_%a.out $W/arr.sh" \
  "--parsable prints only the base job id of the array (no _1-3)")
cap sbatch_plain "sbatch -o /dev/null --wrap true" "without --parsable" >/dev/null
cap sbatch_bad_option "sbatch --parsable --tim=1 --wrap true" "unknown option" >/dev/null
cap sbatch_bad_partition "sbatch --parsable -p nosuch --wrap true" >/dev/null
cap sbatch_missing_script "sbatch --parsable $W/does-not-exist.sh" >/dev/null
TSEC=$(cap sbatch_time_seconds "sbatch --parsable --time=0:0:30 -o /dev/null --wrap true" \
  "a time limit in seconds is accepted but rounded UP to whole minutes (see scontrol_show_job_time_seconds)")
DIR=$(sbatch --parsable directives.sh)
CR=$(sbatch --parsable -o /dev/null --wrap 'sleep 300')
wait_until 30 is_state "$CR" RUNNING
wait_until 30 is_state "$DIR" RUNNING
cap scontrol_show_job_directives "scontrol show job $DIR" \
  "job script $W/directives.sh with #SBATCH --partition=debug --time=00:03:00 --mem=64M --cpus-per-task=2 --job-name=\"xq job 'one'\" --output/--error/--chdir" >/dev/null
cap scontrol_show_job_oneliner "scontrol show job -o $DIR" "-o: one line per job, fields separated by single spaces (values with spaces are NOT quoted)" >/dev/null
cap scontrol_show_job_time_seconds "scontrol show job $TSEC" "submitted with --time=0:0:30" >/dev/null
cap scontrol_show_job_unknown "scontrol show job 999999" "an id that never existed" >/dev/null
cap scancel_running "scancel $CR" "cancel a RUNNING job" >/dev/null
wait_until 60 finished "$OK"; wait_until 60 finished "$FAIL"; wait_until 60 finished "$SIG"
wait_until 60 finished "$MEM"; wait_until 60 finished "$CR"
wait_until 60 bash -c "[ -z \"\$(squeue -h -j $ARR -o %T)\" ]"

# ------------------------------------------------------------------ stage B: fill the node
# TO holds 1 CPU, DIR 2; BLK takes 4 more, ARRT one at a time -> node full (8).
BLK=$(sbatch --parsable -c 4 -o /dev/null --wrap 'sleep 90')
ARRT=$(sbatch --parsable --array=1-3%1 -o /dev/null --wrap 'sleep 60')
wait_until 30 is_state "$BLK" RUNNING
wait_until 30 is_state "${ARRT}_1" RUNNING
P1=$(sbatch --parsable -c 2 -o /dev/null --wrap true)
P2=$(sbatch --parsable -c 2 -o /dev/null --wrap true)
HELD=$(sbatch --parsable --hold -o /dev/null --wrap true)
BEGIN=$(sbatch --parsable --begin=now+1hour -o /dev/null --wrap true)
CP=$(sbatch --parsable -c 2 -o /dev/null --wrap true)
sleep 2
cap scancel_pending "scancel $CP" "cancel a PENDING job" >/dev/null
sleep 1
ALL="$OK,$FAIL,$SIG,$MEM,$ARR,$CR,$DIR,$BLK,$ARRT,$P1,$P2,$HELD,$BEGIN,$CP,$TO"
NOTE="ids: OK=$OK FAIL=$FAIL(exit 3) SIG=$SIG(kill -KILL \$\$) MEM=$MEM(--mem=50M, writes 400 MB) ARR=$ARR(array 1-3, task 2 exits 3) CR=$CR(cancelled while running) DIR=$DIR(running, name with space) BLK=$BLK(running -c 4) ARRT=$ARRT(array 1-3%1, sleep 60) P1=$P1 P2=$P2(pending -c 2) HELD=$HELD(--hold) BEGIN=$BEGIN(--begin=now+1hour) CP=$CP(cancelled while pending) TO=$TO(running, will time out)"
cap squeue_all_states "squeue -h -t all -j $ALL,999999 -o '$FMT'" "$NOTE" "999999 never existed" >/dev/null
cap squeue_all_states_r "squeue -h -r -t all -j $ALL -o '$FMT'" "$NOTE" "-r: one line per array element" >/dev/null
cap squeue_array_task_ids "squeue -h -t all -j ${ARR}_2,${ARRT}_3 -o '$FMT'" "array elements can be asked for as BASE_TASK" >/dev/null
cap squeue_reason_R "squeue -h -t all -j $P1,$P2,$HELD,$BEGIN,$FAIL,$CR,$MEM -o '%i|%t|%R'" "%R: reason in parentheses for pending jobs, node list otherwise" >/dev/null
cap squeue_without_t_all "squeue -h -j $OK,$BLK -o '$FMT'" "without -t all, finished jobs are left out even when their ids are given with -j" >/dev/null
cap squeue_unknown_single "squeue -h -t all -j 999999 -o '$FMT'" "a single unknown id: rc 1" >/dev/null
cap squeue_unknown_two "squeue -h -t all -j 999998,999999 -o '$FMT'" "two unknown ids: rc 0, no output" >/dev/null
cap squeue_pipe_in_name "squeue -h -t all -j $DIR -o '%i|%j|%T'" "the job name is free text: keep %j last or leave it out" >/dev/null
cap sacct_while_pending_running "sacct -X -n -P -o $SACCT_FMT -j $BLK,$ARRT,$P1,$HELD,$CP" "accounting also knows pending/running jobs" >/dev/null
cap scancel_several "scancel $P1 $P2 $HELD $BEGIN" "several ids in one call (space separated; a comma list also works)" >/dev/null
cap scancel_finished "scancel $OK" "a job that already COMPLETED" >/dev/null
cap scancel_finished_and_live "scancel $FAIL $ARRT" "a finished id next to a live one" >/dev/null
cap scancel_unknown "scancel 999999" "an id that never existed: rc 0 and silent" >/dev/null
cap scancel_unknown_verbose "scancel -v 999999" "-v shows the error, rc stays 0" >/dev/null
cap scancel_signal_unknown "scancel --signal=TERM 999999" "with --signal the same id gives rc 1" >/dev/null
cap scancel_signal_finished "scancel --signal=TERM $OK" "with --signal a finished job gives rc 1" >/dev/null
cap scancel_array_task "scancel ${ARR}_1" "an array element that already finished" >/dev/null
scancel "$BLK" "$DIR"
sleep 3
cap squeue_cancelled_running_batch "squeue -h -t all -j $BLK,$DIR,$ARRT,$P1,$P2,$HELD,$BEGIN -o '$FMT'" "just cancelled: BLK DIR ARRT (running) P1 P2 HELD BEGIN (pending)" >/dev/null

# ------------------------------------------------------------------ stage C: timeout, purge
say "waiting for the time limit of job $TO"
wait_until 150 finished "$TO"
cap squeue_timeout_and_purged "squeue -h -t all -j $TO,$OK,$FAIL -o '$FMT'" \
  "TO=$TO just timed out; OK=$OK and FAIL=$FAIL ended more than MinJobAge (60 s) ago: listed or not, depending on when the periodic purge last ran (see squeue_purged_mixed)" >/dev/null
wait_until 30 in_sacct_final "$ALL"
sleep 2
for pair in "success:$OK" "exit3:$FAIL" "killed_by_signal:$SIG" "memory_exceeded:$MEM" \
  "cancelled_running:$CR" "cancelled_pending:$CP" "timeout:$TO" "array:$ARR" \
  "array_throttled_cancelled:$ARRT" "held_cancelled:$HELD"; do
  cap "sacct_${pair%%:*}" "sacct -X -n -P -o $SACCT_FMT -j ${pair#*:}" >/dev/null
done
cap sacct_batch_all "sacct -X -n -P -o $SACCT_FMT -j $ALL,999999" "$NOTE" >/dev/null
cap sacct_steps "sacct -n -P -o JobID,State,ExitCode -j $OK,$FAIL,$SIG,$MEM,$CR,$TO" "without -X: the .batch and .extern steps too" >/dev/null
cap sacct_unknown "sacct -X -n -P -o JobID,State,ExitCode -j 999999" >/dev/null
cap sacct_array_task "sacct -X -n -P -o $SACCT_FMT -j ${ARR}_2" "one element of an array" >/dev/null
cap cat_stderr_memory_exceeded "cat $W/mem.out" "the output file (stdout+stderr) of MEM=$MEM: slurmstepd's messages land in the job's stderr" >/dev/null
cap cat_stderr_timeout "cat $W/to.err" "the --error file of TO=$TO" >/dev/null
BADOUT=$(sbatch --parsable -o /nonexistent/dir/out.txt --wrap 'echo hi')
wait_until 30 finished "$BADOUT"
cap squeue_unwritable_output "squeue -h -t all -j $BADOUT -o '$FMT'" "submitted with -o /nonexistent/dir/out.txt" >/dev/null
wait_until 30 in_sacct_final "$BADOUT"
cap sacct_unwritable_output "sacct -X -n -P -o $SACCT_FMT -j $BADOUT" "submitted with -o /nonexistent/dir/out.txt: signal 53 = launch failure" >/dev/null
cap cat_stderr_fail "cat $W/fail.out" "the output file of FAIL=$FAIL: nothing from slurm for a plain non-zero exit" >/dev/null
say "waiting until job $OK is purged from slurmctld (MinJobAge 60 s + purge interval)"
wait_until 200 bash -c "[ -z \"\$(squeue -h -t all -j $OK,999999 -o %i)\" ]"
cap squeue_purged_mixed "squeue -h -t all -j $OK,$FAIL,$TO,999999 -o '$FMT'" \
  "OK=$OK and FAIL=$FAIL ended > MinJobAge ago and are purged, TO=$TO may still be listed, 999999 never existed" >/dev/null
cap squeue_purged_single "squeue -h -t all -j $OK -o '$FMT'" "one purged id alone: like an unknown id, rc 1" >/dev/null
cap sacct_after_purge "sacct -X -n -P -o $SACCT_FMT -j $OK,$FAIL" "accounting keeps the outcome after the purge" >/dev/null

# ------------------------------------------------------------------ controller down
say "stopping slurmctld for a moment"
kill "$(cat /run/slurmctld.pid)"
wait_until 30 bash -c '! kill -0 $(cat /run/slurmctld.pid 2>/dev/null) 2>/dev/null'
cap sbatch_controller_down "sbatch --parsable -o /dev/null --wrap true" "slurmctld stopped; the call takes ~9 s" >/dev/null
cap squeue_controller_down "squeue -h -t all -j $TO -o '$FMT'" "slurmctld stopped; the call takes ~18 s" >/dev/null
cap scancel_controller_down "scancel $TO" "slurmctld stopped" >/dev/null
cap sacct_controller_down "sacct -X -n -P -o JobID,State,ExitCode -j $TO" "slurmctld stopped, slurmdbd up: sacct still answers" >/dev/null
bash "$ROOT/scripts/services/slurm.sh" start >&2
say "done: $(ls "$CAP_DIR" | wc -l) files in $CAP_DIR"
