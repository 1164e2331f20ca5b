"""pipen's README pipeline (two processes: sort a file, then number its lines),
run with the scheduler and folders given on the command line.

    python readme_pipeline.py SCHEDULER WORKDIR OUTDIR [N_ITEMS] [SCHEDULER_OPTS_JSON]

With N_ITEMS > 1 the first process gets that many input files (the benchmark's
form); it prints ``OK <seconds>`` when the pipeline succeeded.
"""

import json
import sys
import time
from pathlib import Path

from pipen import Pipen, Proc


class P1(Proc):
    """Sort input file"""

    input = "infile:file"
    output = "outfile:file:intermediate.txt"
    script = "cat {{in.infile}} | sort > {{out.outfile}}"


class P2(Proc):
    """Paste line number"""

    requires = P1
    input = "infile:file"
    output = "outfile:file:result.txt"
    script = "paste <(seq 1 3) {{in.infile}} > {{out.outfile}}"


def main() -> None:
    scheduler, workdir, outdir = sys.argv[1:4]
    n_items = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    opts = json.loads(sys.argv[5]) if len(sys.argv) > 5 else {}
    data = Path(workdir).parent / "data"
    data.mkdir(parents=True, exist_ok=True)
    files = []
    for i in range(n_items):
        path = data / f"in{i}.txt"
        path.write_text(f"3{i}\n2{i}\n1{i}\n")
        files.append(str(path))
    pipeline = (
        Pipen(
            name="ReadmePipeline",
            scheduler=scheduler,
            scheduler_opts=opts,
            forks=max(1, min(n_items, 8)),
            workdir=workdir,
            outdir=outdir,
            cache=False,
            loglevel="warning",
        )
        .set_starts(P1)
        .set_data(files)
    )
    start = time.perf_counter()
    ok = pipeline.run()
    print(f"{'OK' if ok else 'FAILED'} {time.perf_counter() - start:.3f}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
