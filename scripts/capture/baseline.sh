#!/usr/bin/env bash
# Baseline timings of the raw scheduler commands on the test clusters, for the
# backends' benchmarks to compare with. Prints a small report on stdout.
#
#   scripts/capture/baseline.sh slurm|sge [N_JOBS]     (default 200 jobs)
#
# Needs the cluster running and otherwise idle. Slurm ~1-2 min, SGE ~2-3 min.
set -euo pipefail
WHICH=${1:?slurm or sge}
N=${2:-200}
W=/tmp/xqute-baseline-$WHICH
rm -rf "$W"; mkdir -p "$W"; cd "$W"

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", b - a}'; }
ms_per() { awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN {printf "%.1f", (b - a) * 1000 / n}'; }
say() { echo "[baseline] $*" >&2; }

slurm() {
  local t0 t1 ids i j id first_start st ts te
  # 1. single calls
  t0=$(now); for i in $(seq 10); do sbatch --parsable -o /dev/null --wrap true >/dev/null; done; t1=$(now)
  echo "sbatch: $(ms_per "$t0" "$t1" 10) ms per call (10 calls)"
  sleep 3
  # 2. latency: submit -> RUNNING, end -> COMPLETED seen by squeue
  t0=$(now); id=$(sbatch --parsable -o /dev/null --wrap 'sleep 2')
  for i in $(seq 300); do st=$(squeue -h -t all -j "$id" -o %T); [ "$st" = RUNNING ] && break; sleep 0.05; done
  ts=$(now)
  for i in $(seq 300); do st=$(squeue -h -t all -j "$id" -o %T); [ "$st" = COMPLETED ] && break; sleep 0.05; done
  te=$(now)
  echo "submit -> RUNNING seen: $(secs "$t0" "$ts") s; RUNNING -> COMPLETED seen: $(secs "$ts" "$te") s (job sleeps 2 s)"
  # 3. N trivial jobs in a shell loop, wait until all finished
  say "submitting $N jobs"
  ids=()
  t0=$(now)
  for i in $(seq "$N"); do ids+=("$(sbatch --parsable -o /dev/null --wrap true)"); done
  t1=$(now)
  local list
  list=$(IFS=,; echo "${ids[*]}")
  for i in $(seq 1200); do
    [ -z "$(squeue -h -t PD,R,CG,CF -j "$list" -o %i)" ] && break
    sleep 0.2
  done
  te=$(now)
  echo "$N x 'sbatch --wrap true': submit loop $(secs "$t0" "$t1") s, all finished after $(secs "$t0" "$te") s"
  # 4. squeue with N ids (all finished, within MinJobAge)
  t0=$(now); squeue -h -t all -j "$list" -o '%i|%A|%F|%K|%t|%T|%r' > squeue.out; t1=$(now)
  echo "squeue -h -t all -j <$N ids>: $(ms_per "$t0" "$t1" 1) ms, $(wc -l < squeue.out) lines"
  t0=$(now); for i in $(seq 10); do squeue -h -t all -j "${ids[0]}" -o '%i|%T' >/dev/null; done; t1=$(now)
  echo "squeue -j <1 id>: $(ms_per "$t0" "$t1" 10) ms per call"
  t0=$(now); sacct -X -n -P -o JobID,State,ExitCode -j "$list" > sacct.out; t1=$(now)
  echo "sacct -X -j <$N ids>: $(ms_per "$t0" "$t1" 1) ms, $(wc -l < sacct.out) lines, $(grep -c COMPLETED sacct.out) COMPLETED"
}

sge() {
  local t0 t1 ts te i id st
  t0=$(now); for i in $(seq 10); do qsub -terse -b y -o /dev/null -j y true >/dev/null; done; t1=$(now)
  echo "qsub: $(ms_per "$t0" "$t1" 10) ms per call (10 calls)"
  for i in $(seq 300); do [ -z "$(qstat)" ] && break; sleep 0.2; done
  t0=$(now); id=$(qsub -terse -b y -o /dev/null -j y sleep 2)
  for i in $(seq 300); do st=$(qstat | awk -v j="$id" '$1 == j {print $5}'); [ "$st" = r ] && break; sleep 0.05; done
  ts=$(now)
  for i in $(seq 300); do [ -z "$(qstat | awk -v j="$id" '$1 == j')" ] && break; sleep 0.05; done
  te=$(now)
  echo "submit -> r seen: $(secs "$t0" "$ts") s; r -> gone from qstat: $(secs "$ts" "$te") s (job sleeps 2 s)"
  for i in $(seq 100); do qacct -j "$id" >/dev/null 2>&1 && break; sleep 0.1; done
  echo "gone from qstat -> in qacct: $(secs "$te" "$(now)") s"
  say "submitting $N jobs"
  t0=$(now)
  for i in $(seq "$N"); do qsub -terse -b y -o /dev/null -j y true >/dev/null; done
  t1=$(now)
  t0q=$(now); qstat -u '*' > qstat.out; t1q=$(now)
  qstat -xml -u '*' > qstat.xml.out
  t2q=$(now)
  echo "qstat -u '*' with $(($(wc -l < qstat.out) - 2)) jobs listed: $(ms_per "$t0q" "$t1q" 1) ms; qstat -xml: $(ms_per "$t1q" "$t2q" 1) ms"
  for i in $(seq 3000); do [ -z "$(qstat)" ] && break; sleep 0.2; done
  te=$(now)
  echo "$N x 'qsub -b y true': submit loop $(secs "$t0" "$t1") s, all finished after $(secs "$t0" "$te") s"
  t0=$(now); for i in $(seq 10); do qstat >/dev/null; done; t1=$(now)
  echo "qstat (empty queue): $(ms_per "$t0" "$t1" 10) ms per call"
  t0=$(now); qacct -j "$id" >/dev/null; t1=$(now)
  echo "qacct -j <1 id> (accounting file with $(wc -l < /var/lib/gridengine/default/common/accounting) records): $(ms_per "$t0" "$t1" 1) ms"
}

echo "# $WHICH baseline, $(date -u +%FT%TZ), $(nproc) cores"
"$WHICH"
