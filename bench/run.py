"""`make bench`: run the benchmarks, print the figures, write bench/results/*.json.

python -m bench.run                 # everything
python -m bench.run --quick         # shorter runs (smoke test of the harness)
python -m bench.run --only p1,p4    # some of them
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import time
import traceback

from bench import harness

BENCHMARKS = {
    "p1": ("bench.ingest", "ingest"),
    "p2": ("bench.end_to_end", "end_to_end"),
    "p3": ("bench.statistics", "statistics"),
    "p4": ("bench.intents", "intents"),
}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default=",".join(BENCHMARKS))
    args = parser.parse_args(argv)
    machine = harness.machine()
    print(json.dumps({"machine": machine}, indent=2))
    failed = []
    for key in [k.strip() for k in args.only.split(",") if k.strip()]:
        module_name, result_name = BENCHMARKS[key]
        if key == "p3":
            # The statistics benchmark is its own script; it writes bench/results/statistics.json itself.
            command = [sys.executable, "bench/statistics.py"] + (["--rows", "500000"] if args.quick else [])
            if subprocess.run(command, cwd=harness.ROOT).returncode:
                failed.append(key)
            continue
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            print(f"{key}: {module_name} is not there ({exc}); skipped")
            failed.append(key)
            continue
        started = time.monotonic()
        try:
            payload = module.run(quick=args.quick)
        except Exception:
            traceback.print_exc()
            failed.append(key)
            continue
        payload.update(
            machine=machine,
            quick=args.quick,
            wall_seconds=round(time.monotonic() - started, 1),
            # Other work on the machine skews every figure; the load average says how much there was.
            load_average_after=[round(x, 2) for x in os.getloadavg()],
        )
        path = harness.write_result(payload.pop("result_name", result_name), payload)
        print(f"{key}: written to {path.relative_to(harness.ROOT)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
