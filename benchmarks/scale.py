"""How ``idr resolve`` scales: wall time and where the memory sits, per input size.

    .venv-bench/bin/python benchmarks/scale.py --inputs 100k=data/benchmarks/gen100k/ours \
        --inputs 1m=data/benchmarks/gen1m/ours --inputs 3m=data/scale/gen3m/ours \
        --splink 100k=data/benchmarks/gen100k --splink 1m=data/benchmarks/gen1m

Runs under the benchmark venv (psutil; Splink for the peer), like ``accuracy.py``. Each
``--inputs SIZE=FOLDER`` is a folder of ``idr generate`` output (the four source files and
``sources.yaml``; ``idr generate --people N --seed 20240601`` gives about 2.06 records a person,
the ratio ``datasets.py`` sizes its generator datasets by). ``--splink SIZE=FOLDER`` names a
folder prepared by ``datasets.py`` (``splink/`` inside) and runs Splink 5 on DuckDB on it right
after ours, so the time ratio compares two runs of the same minutes on this machine.

Per size it prints, from samples of the process tree taken every ``SAMPLE_SECONDS``:

* wall seconds from process start to the output file;
* the peak RSS of the driver process (the Python process that runs ``idr resolve``, with any
  child it forks itself: it must hold only bounded samples and parameters, so its peak stays
  flat as the records grow);
* the peak summed RSS of the JVMs (in ``local[*]`` the driver JVM hosts the executors; on a
  ``local-cluster`` or standalone master the executors are JVMs of their own) and of Spark's
  Python workers;
* the peak summed PSS of the whole tree (each shared page split among its sharers: the memory
  the run holds);
* for ours, the seconds of each of ``idr resolve``'s steps, from its step log, and the share
  its embedding and indexing steps take.

Then a projection for 10M and 100M records on an n-node cluster, from the measured per-record
cost of the largest size, with its assumptions printed beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import yaml
from step_log import EMBED_STEPS, done_seconds, parse_step_log, seconds_of, step_seconds

REPO = Path(__file__).resolve().parents[1]
SAMPLE_SECONDS = 0.5
PSS_EVERY = 4  # samples: PSS makes the kernel walk every mapped page, so it is read less often
GB = 1e9
SIZES = {"10k": 10_000, "100k": 100_000, "1m": 1_000_000, "3m": 3_000_000, "10m": 10_000_000}


@dataclass
class Peaks:
    driver_rss: int = 0
    jvm_rss: int = 0
    workers_rss: int = 0
    tree_pss: int = 0

    def update(self, root: psutil.Process, with_pss: bool) -> None:
        try:
            children = root.children(recursive=True)
        except psutil.NoSuchProcess:
            return
        driver = jvm = workers = pss = 0
        parent: dict[int, int] = {}
        names: dict[int, str] = {}
        memory: dict[int, int] = {}
        for proc in [root, *children]:
            # A process may exit between any two of these calls: record it only when all succeed.
            try:
                name, ppid = proc.name(), proc.ppid()
                if with_pss:
                    full = proc.memory_full_info()
                    rss, proc_pss = full.rss, getattr(full, "pss", full.rss)
                else:
                    rss, proc_pss = proc.memory_info().rss, 0
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
            names[proc.pid], parent[proc.pid], memory[proc.pid] = name, ppid, rss
            pss += proc_pss
        for pid, rss in memory.items():
            if "java" in names[pid]:
                jvm += rss
            elif _under_jvm(pid, root.pid, parent, names):
                workers += rss
            else:  # the driver and any child it forked itself
                driver += rss
        self.driver_rss = max(self.driver_rss, driver)
        self.jvm_rss = max(self.jvm_rss, jvm)
        self.workers_rss = max(self.workers_rss, workers)
        self.tree_pss = max(self.tree_pss, pss)


def _under_jvm(pid: int, root: int, parent: dict[int, int], names: dict[int, str]) -> bool:
    """Whether a JVM of the tree started ``pid``: Spark's Python workers are the JVM's children."""
    while pid != root and pid in parent:
        pid = parent[pid]
        if "java" in names.get(pid, ""):
            return True
    return False


@dataclass
class Run:
    system: str
    size: str
    records: int
    wall: float
    peaks: Peaks
    returncode: int
    log: Path


def run_tree(cmd: list[str], log: Path, env: dict[str, str]) -> tuple[float, Peaks, int]:
    """Run ``cmd`` to completion, sampling its process tree; (wall seconds, peaks, exit code)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    peaks = Peaks()
    with log.open("w") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=REPO, env=env)
        root = psutil.Process(proc.pid)
        samples = 0
        while proc.poll() is None:
            peaks.update(root, with_pss=samples % PSS_EVERY == 0)
            samples += 1
            time.sleep(SAMPLE_SECONDS)
        wall = time.perf_counter() - started
    return wall, peaks, proc.returncode


def input_files(folder: Path) -> list[Path]:
    sources = yaml.safe_load((folder / "sources.yaml").read_text())["sources"]
    return [folder / source["file"] for source in sources.values()]


def records_in(folder: Path) -> int:
    """Records the inputs hold: the rows of the generator's truth in ``folder`` or its parent
    (``datasets.py`` keeps it there); 0 when there is none."""
    for truth in (folder / "truth.csv", folder.parent / "truth.csv"):
        if truth.exists():
            with truth.open("rb") as handle:
                return sum(1 for _ in handle) - 1
    return 0


def run_ours(size: str, folder: Path, work: Path) -> Run:
    cmd = [str(REPO / ".venv" / "bin" / "idr"), "resolve"]
    for path in input_files(folder):
        cmd += ["--input", str(path)]
    out_dir = work / f"ours-{size}"
    cmd += ["--mapping", str(folder / "sources.yaml"), "--output", str(out_dir / "identities.parquet")]
    cmd += ["--work-dir", str(out_dir / "work")]
    env = os.environ | {"PYSPARK_PYTHON": str(REPO / ".venv" / "bin" / "python"), "HF_HUB_OFFLINE": "1"}
    wall, peaks, code = run_tree(cmd, out_dir / "resolve.log", env)
    return Run(
        "ours", size, records_in(folder) or SIZES.get(size, 0), wall, peaks, code, out_dir / "resolve.log"
    )


def run_splink(size: str, prepared: Path, work: Path) -> Run:
    out_dir = work / f"splink-{size}"
    cmd = [
        sys.executable,
        str(REPO / "benchmarks" / "splink_runner.py"),
        str(prepared),
        str(out_dir / "clusters.csv"),
    ]
    wall, peaks, code = run_tree(cmd, out_dir / "splink.log", dict(os.environ))
    return Run("splink", size, records_in(prepared), wall, peaks, code, out_dir / "splink.log")


def print_table(runs: list[Run]) -> None:
    print(
        f"\n{'system':7} {'size':>5} {'records':>10} {'wall s':>8} {'driver GB':>9} {'JVMs GB':>8} "
        f"{'workers GB':>10} {'tree PSS GB':>11} {'exit':>4}"
    )
    for r in runs:
        p = r.peaks
        print(
            f"{r.system:7} {r.size:>5} {r.records:>10,} {r.wall:8.1f} {p.driver_rss / GB:9.2f} "
            f"{p.jvm_rss / GB:8.2f} {p.workers_rss / GB:10.2f} {p.tree_pss / GB:11.2f} {r.returncode:>4}"
        )
    ours = {r.size: r for r in runs if r.system == "ours"}
    for r in runs:
        if r.system == "splink" and r.size in ours:
            print(f"{r.size}: ours / Splink wall = {ours[r.size].wall / r.wall:.2f}x (same run)")


def print_steps(runs: list[Run]) -> None:
    """Each run of ours split into ``idr resolve``'s steps, from its step log, with the share
    of the run its embedding and indexing steps took."""
    for r in runs:
        text = r.log.read_text(errors="replace") if r.system == "ours" and r.log.exists() else ""
        end = done_seconds(text)
        if end is None:
            continue
        steps = step_seconds(parse_step_log(text), end)
        print(f"\nours {r.size}: idr resolve {end:.1f} s by its own log")
        for step, seconds in steps.items():
            print(f"  {seconds:7.1f} s  {step}")
        embedding = seconds_of(steps, *EMBED_STEPS)
        print(f"  embedding + indexing: {embedding:.1f} s, {embedding / end:.1%} of the run")


def print_projection(runs: list[Run], cores_per_node: int, nodes: list[int]) -> None:
    """A linear projection from the largest measured run of ours; the assumptions are printed."""
    done = [r for r in runs if r.system == "ours" and r.returncode == 0 and r.records]
    if len(done) < 2:
        return
    small, large = sorted(done, key=lambda r: r.records)[-2:]
    per_record = (large.wall - small.wall) / (large.records - small.records)
    fixed = max(large.wall - per_record * large.records, 0.0)
    here = os.cpu_count() or 1
    print(
        f"\nProjection (assumptions: the marginal cost per record between {small.size} and "
        f"{large.size}, {per_record * 1e6:.1f} s per million records on {here} cores, stays "
        f"linear, since the candidate pairs per record are bounded by the bucket caps; it divides "
        f"evenly over nodes x {cores_per_node} cores; the fixed {fixed:.0f} s does not shrink; "
        "shuffles over the network and stragglers are not modeled, so these are lower bounds; and "
        "only work that runs on Spark's executors divides over nodes: a matching step that runs in "
        "the driver process does not, so for such a run the figures do not hold):"
    )
    for target in (10_000_000, 100_000_000):
        for n in nodes:
            seconds = fixed + per_record * target * here / (n * cores_per_node)
            print(f"  {target:>11,} records on {n:>3} node(s): {seconds / 60:7.1f} min")


def parse_pairs(values: list[str]) -> dict[str, Path]:
    out = {}
    for value in values:
        size, _, folder = value.partition("=")
        out[size] = Path(folder)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", action="append", default=[], help="SIZE=FOLDER of idr generate output")
    parser.add_argument("--splink", action="append", default=[], help="SIZE=FOLDER prepared by datasets.py")
    parser.add_argument("--work-dir", type=Path, default=None, help="outputs and logs (default: a temp dir)")
    parser.add_argument("--cores-per-node", type=int, default=8)
    parser.add_argument("--nodes", default="4,16,64", help="cluster sizes for the projection")
    parser.add_argument("--json", type=Path, default=None, help="also write the runs here")
    args = parser.parse_args()
    inputs, splink = parse_pairs(args.inputs), parse_pairs(args.splink)
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="idr-scale-"))
    runs: list[Run] = []
    for size, folder in sorted(inputs.items(), key=lambda item: SIZES.get(item[0], 0)):
        runs.append(run_ours(size, folder, work))
        print(f"ours {size}: {runs[-1].wall:.1f} s, exit {runs[-1].returncode}", flush=True)
        if size in splink:
            runs.append(run_splink(size, splink[size], work))
            print(f"splink {size}: {runs[-1].wall:.1f} s, exit {runs[-1].returncode}", flush=True)
    print_table(runs)
    print_steps(runs)
    print_projection(runs, args.cores_per_node, [int(n) for n in args.nodes.split(",")])
    if args.json:
        args.json.write_text(
            json.dumps(
                [
                    {
                        "system": r.system,
                        "size": r.size,
                        "records": r.records,
                        "wall": r.wall,
                        "driver_rss": r.peaks.driver_rss,
                        "jvm_rss": r.peaks.jvm_rss,
                        "workers_rss": r.peaks.workers_rss,
                        "tree_pss": r.peaks.tree_pss,
                        "returncode": r.returncode,
                    }
                    for r in runs
                ],
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
