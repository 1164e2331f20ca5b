"""pipen's README pipeline (two processes: sort a file, then number its lines)
on xqute: ``pip install . pipen``, then

    python examples/pipen_readme.py --workdir /tmp/wd --outdir /tmp/out
    python examples/pipen_readme.py --scheduler slurm --items 3 --forks 3

Each of ``--items`` input files (3 lines) is sorted by P1 and numbered by P2, one
job per file in each process, ``--forks`` at a time. Prints ``OK <seconds>``
(the pipeline's run time) and exits 0 when the pipeline succeeded.
"""

import argparse
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
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scheduler", default="local")
    parser.add_argument("--workdir", default="./.pipen")
    parser.add_argument("--outdir", default="./ReadmePipeline-output")
    parser.add_argument("--items", type=int, default=1, help="input files (jobs)")
    parser.add_argument("--forks", type=int, default=1, help="jobs at a time")
    parser.add_argument("--opts", default="{}", help="scheduler_opts as JSON")
    args = parser.parse_args()
    data = Path(args.workdir).absolute().parent / "data"
    data.mkdir(parents=True, exist_ok=True)
    files = []
    for i in range(args.items):
        path = data / f"in{i}.txt"
        path.write_text(f"3{i}\n2{i}\n1{i}\n")
        files.append(str(path))
    pipeline = (
        Pipen(
            name="ReadmePipeline",
            scheduler=args.scheduler,
            scheduler_opts=json.loads(args.opts),
            forks=args.forks,
            workdir=args.workdir,
            outdir=args.outdir,
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
