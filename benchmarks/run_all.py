"""Run every CPU benchmark one after the other (``make bench``), each in its own process.

They print their tables and write JSON under ``benchmarks/results/``. Run them on an otherwise
idle machine: on 2 cores, a 2-thread torch op slows down many times when another process holds
a core, so figures taken beside other work are meaningless. The GPU script
(``benchmarks/gpu_run.sh``) is separate: it needs a CUDA machine.
"""
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

BENCHMARKS = [
    ["bench_evaluate.py", "--json", str(RESULTS / "evaluate.json")],
    ["bench_scale.py"],
    ["bench_topology.py", "--out", str(RESULTS / "topology.json")],
    ["bench_pca_memory.py"],
    ["bench_data.py", "--json", str(RESULTS / "data.json")],
    ["bench_study_cost.py", "--json", str(RESULTS / "study_cost.json")],
    ["bench_curvature.py", "--json", str(RESULTS / "curvature.json")],
    ["bench_compile.py", "--only", "w3,w1,w2,calibrate", "--json", str(RESULTS / "compile.json")],
    ["bench_first_layer.py", "--json", str(RESULTS / "first_layer.json")],
]


def main() -> int:
    RESULTS.mkdir(exist_ok=True)
    only = set(sys.argv[1:])
    failed = []
    for script, *args in BENCHMARKS:
        if only and script.removesuffix(".py").removeprefix("bench_") not in only:
            continue
        print(f"\n===== {script} {' '.join(args)}", flush=True)
        if subprocess.run([sys.executable, str(HERE / script), *args]).returncode != 0:
            failed.append(script)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
