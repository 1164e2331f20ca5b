#!/usr/bin/env bash
# Capture real Grid Engine command output into tests/data/sge/ (one file per
# scenario, layout in tests/data/README.md). Needs the cluster of
# scripts/services/sge.sh with 4 slots. Takes about 1.5 minutes. Stops
# sge_qmaster for a few seconds on purpose.
#
#   scripts/capture/sge.sh [OUT_DIR]     (default: tests/data/sge)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
export CAP_DIR=${1:-$ROOT/tests/data/sge}
# shellcheck source=lib.sh
. "$HERE/lib.sh"
W=/tmp/xqute-capture-sge
rm -rf "$W"; mkdir -p "$W"; cd "$W"

bash "$ROOT/scripts/services/sge.sh" status >/dev/null || { say "cluster not running"; exit 1; }
SLOTS=$(qconf -sq all.q | awk '$1 == "slots" {print $2}')
[ "$SLOTS" = 4 ] || { say "need exactly 4 slots in all.q (SGE_SLOTS=4), have $SLOTS"; exit 1; }
[ -z "$(qstat -u '*')" ] || { say "the queue is not empty"; exit 1; }

qstate() { qstat -u '*' | awk -v j="$1" '$1 == j {print $5; exit}'; }
is_qstate() { [ "$(qstate "$1")" = "$2" ]; }
gone() { [ -z "$(qstat -u '*' | awk -v j="$1" '$1 == j')" ]; }
in_qacct() { qacct -j "$1" >/dev/null 2>&1; }
jobid() { sed -n 's/^Your job\(-array\)\{0,1\} \([0-9]*\).*/\2/p'; }

# ------------------------------------------------------------------ job scripts
printf '#!/bin/bash\necho "hello from $JOB_ID"\n' > ok.sh
printf '#!/bin/bash\necho about to fail >&2\nexit 3\n' > fail.sh
printf '#!/bin/bash\necho killing myself\nkill -KILL $$\n' > sig.sh
cat > arr.sh <<'EOF'
#!/bin/bash
echo "task $SGE_TASK_ID of $JOB_ID"
[ "$SGE_TASK_ID" = 2 ] && exit 3
exit 0
EOF
cat > directives.sh <<EOF
#!/bin/bash
#\$ -q all.q
#\$ -l h_vmem=200M
#\$ -N xq_directives
#\$ -cwd
#\$ -o $W/dir.\$JOB_ID.out
#\$ -e $W/dir.\$JOB_ID.err
sleep 40
EOF

# ------------------------------------------------------------------ stage A: outcomes
OK=$(cap qsub_plain "qsub -o $W -e $W $W/ok.sh" | jobid)
cap qsub_terse "qsub -terse -o $W -e $W $W/ok.sh" >/dev/null
FAIL=$(qsub -terse -o "$W" -e "$W" fail.sh)
SIG=$(qsub -terse -o "$W" -e "$W" sig.sh)
ARR=$(cap qsub_array "qsub -t 1-4 -o $W -e $W $W/arr.sh" | jobid)
cap qsub_array_terse "qsub -terse -t 1-3 -o /dev/null -j y $W/ok.sh" "-terse with -t prints BASE.FIRST-LAST:STEP" >/dev/null
cap qsub_binary "qsub -terse -b y -o /dev/null -j y /bin/true" "-b y: a command, not a script" >/dev/null
cap qsub_named_space "qsub -N 'my job' -o /dev/null -j y $W/ok.sh" "-N with a space" >/dev/null
cap qsub_bad_queue "qsub -q nosuch.q -o /dev/null $W/ok.sh" >/dev/null
cap qsub_missing_script "qsub $W/does-not-exist.sh" >/dev/null
cap qsub_bad_option "qsub -bogus $W/ok.sh" >/dev/null
TO=$(qsub -terse -l h_rt=0:0:5 -o "$W" -e "$W" -b y sleep 60)
# an output path that cannot be opened: the job goes to Eqw once it is dispatched
EQW=$(qsub -terse -o /nonexistent/dir/out.txt -j y -b y true)
wait_until 30 is_qstate "$EQW" Eqw
wait_until 60 in_qacct "$OK"; wait_until 60 in_qacct "$FAIL"; wait_until 60 in_qacct "$SIG"
wait_until 60 in_qacct "$TO"

# ------------------------------------------------------------------ stage B: fill the 4 slots
DIR=$(qsub -terse directives.sh)
CR=$(qsub -terse -o /dev/null -j y -b y sleep 300)
BLK=$(qsub -terse -o /dev/null -j y -b y sleep 90)
ARRT=$(qsub -terse -t 1-3 -tc 1 -o /dev/null -j y -b y sleep 60); ARRT=${ARRT%%.*}
wait_until 30 is_qstate "$DIR" r; wait_until 30 is_qstate "$CR" r
wait_until 30 is_qstate "$BLK" r; wait_until 30 is_qstate "$ARRT" r
P1=$(qsub -terse -o /dev/null -j y -b y true)
HELD=$(qsub -terse -h -o /dev/null -j y -b y true)
PARR=$(qsub -terse -t 1-2 -o /dev/null -j y -b y true); PARR=${PARR%%.*}
sleep 3
NOTE="ids: DIR=$DIR(directives, r) CR=$CR(r) BLK=$BLK(r) ARRT=$ARRT(array 1-3 -tc 1, sleep 60) P1=$P1(qw) HELD=$HELD(-h) EQW=$EQW(Eqw: -o /nonexistent/dir) PARR=$PARR(pending array 1-2)"
cap qstat_default "qstat" "$NOTE" >/dev/null
cap qstat_all_users "qstat -u '*'" "$NOTE" >/dev/null
cap qstat_xml "qstat -xml -u '*'" "$NOTE" >/dev/null
cap qstat_ext "qstat -ext -u '*'" "$NOTE" >/dev/null
cap qstat_j_directives "qstat -j $DIR" "job script with #\$ -q all.q -l h_vmem=200M -N xq_directives -cwd -o/-e" >/dev/null
cap qstat_j_several "qstat -j $P1,$HELD" "-j with a comma list" >/dev/null
cap qstat_j_array "qstat -j $ARRT" >/dev/null
cap qstat_j_unknown "qstat -j 999999" "an id that never existed" >/dev/null
cap qstat_j_eqw "qstat -j $EQW" "the job in Eqw: the error reason is in the 'error reason' line" >/dev/null
cap qstat_named_space "qstat -u '*' -r" "-r: full job names and requests" >/dev/null
cap qdel_several "qdel $P1,$HELD" "a comma list: one qw and one hqw job" >/dev/null
cap qdel_eqw_and_array_task "qdel $EQW $PARR.1" "an Eqw job and one task of a pending array" >/dev/null
cap qdel_finished "qdel $OK" "a job that already finished" >/dev/null
cap qdel_finished_and_live "qdel $FAIL,$PARR" "a finished job next to a live one" >/dev/null
cap qdel_unknown "qdel 999999" "an id that never existed" >/dev/null
# the running one last: its freed slot would let the scheduler start the waiting jobs above
cap qdel_running "qdel $CR" "delete a running job" >/dev/null
sleep 2
cap qstat_after_qdel "qstat -u '*'" "right after deleting CR=$CR P1=$P1 HELD=$HELD EQW=$EQW PARR=$PARR" >/dev/null
qdel "$BLK" "$ARRT" "$DIR" >/dev/null
wait_until 60 gone "$BLK"; wait_until 60 gone "$ARRT"; wait_until 60 gone "$DIR"
cap qstat_empty "qstat -u '*'" "no jobs: empty output, rc 0" >/dev/null
cap qstat_xml_empty "qstat -xml -u '*'" "no jobs" >/dev/null
cap qstat_s_z "qstat -s z -u '*'" "-s z: recently finished (zombie) jobs, if the qmaster keeps them (finished_jobs)" >/dev/null

# ------------------------------------------------------------------ stage C: accounting
wait_until 30 in_qacct "$CR"; wait_until 30 in_qacct "$ARRT"; wait_until 30 in_qacct "$DIR"
sleep 2
for pair in "success:$OK" "exit3:$FAIL" "killed_by_signal:$SIG" "qdel_running:$CR" \
  "h_rt_exceeded:$TO" "array:$ARR" "directives_qdel:$DIR"; do
  cap "qacct_${pair%%:*}" "qacct -j ${pair#*:}" >/dev/null
done
cap qacct_array_task "qacct -j $ARR -t 2" "one task of an array (task 2 exits 3)" >/dev/null
cap qacct_qdel_pending "qacct -j $P1" "deleted while qw: never ran" >/dev/null
cap qacct_eqw_deleted "qacct -j $EQW" "was in Eqw (unwritable -o), then deleted: the failed start is accounted" >/dev/null
cap qacct_unknown "qacct -j 999999" "an id that never existed" >/dev/null
cap qacct_several "qacct -j $OK -j $FAIL" "two -j options: only the last one is reported" >/dev/null

# ------------------------------------------------------------------ qmaster down
say "stopping sge_qmaster for a moment"
QPID=$(cat /var/spool/gridengine/qmaster/qmaster.pid)
kill "$QPID"
wait_until 30 bash -c "! kill -0 $QPID 2>/dev/null"
cap qsub_qmaster_down "qsub -terse -b y -o /dev/null -j y true" "sge_qmaster stopped" >/dev/null
cap qstat_qmaster_down "qstat -u '*'" "sge_qmaster stopped" >/dev/null
cap qdel_qmaster_down "qdel 999999" "sge_qmaster stopped" >/dev/null
cap qacct_qmaster_down "qacct -j $OK" "sge_qmaster stopped: qacct reads the accounting file and still works" >/dev/null
bash "$ROOT/scripts/services/sge.sh" start >&2
say "done: $(ls "$CAP_DIR" | wc -l) files in $CAP_DIR"
