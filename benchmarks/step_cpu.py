"""Per step of an ``idr resolve`` run: wall seconds and the CPU seconds each kind of process spent.

A step's wall time alone does not say whether it kept both cores busy or left one idle, nor
whether Spark's JVM, the driver or the Python workers (Spark's, and the driver's forked
children) did the work; that is what decides where a step can still gain. The command's own
step log ("12.3 s  standardizing") marks where each step starts; the process tree is sampled
every half second with psutil.

    .venv-bench/bin/python benchmarks/step_cpu.py --log run.log -- \\
        .venv/bin/idr resolve --work-dir /tmp/w --input ... --mapping ... --output /tmp/out.csv

The command's output goes to ``--log``, followed by the table. With ``--memory`` each sample
also reads the tree's summed PSS (the kernel walks every mapped page, so the CPU columns of that
run include the sampler's own cost), and the table gains each step's peak with its split:
which step sets the whole run's peak, and which kind of process holds the memory there.
"""

from __future__ import annotations

import argparse
import collections
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import record

# "  12.3 s  standardizing    cli.py:98": the elapsed time, then the step's name.
STEP_LINE = re.compile(r"\d+\.\d s  (.+?)(?:\s{2,}|$)")
SAMPLE_SECONDS = 0.5


def process_kind(process: psutil.Process, root_pid: int) -> str:
    """jvm (Spark), driver (the command itself), or worker (any other Python process)."""
    if "java" in process.name():
        return "jvm"
    return "driver" if process.pid == root_pid else "worker"


def run(command: list[str], log_path: Path, memory: bool = False, table: list[str] | None = None) -> int:
    """Run ``command``, write its output and then the step table to ``log_path``; the table's
    lines are also appended to ``table`` as markdown rows when one is given."""
    log = log_path.open("w")
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    current = ["start"]
    order = ["start"]

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            log.flush()
            if found := STEP_LINE.search(line):
                current[0] = found.group(1).strip()[:40]
                order.append(current[0])

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    root = psutil.Process(proc.pid)
    wall: collections.Counter[str] = collections.Counter()
    cpu: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    seen: dict[int, float] = {}
    # step -> (summed PSS, {kind: PSS}) at that step's highest sample
    peak: dict[str, tuple[int, collections.Counter[str]]] = {}
    previous = time.time()
    while proc.poll() is None:
        time.sleep(SAMPLE_SECONDS)
        now = time.time()
        step = current[0]
        wall[step] += now - previous
        previous = now
        try:
            tree = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            break
        held: collections.Counter[str] = collections.Counter()
        for process in tree:
            try:
                kind = process_kind(process, root.pid)
                times = process.cpu_times()
                total = times.user + times.system
                cpu[step][kind] += total - seen.get(process.pid, 0.0)
                seen[process.pid] = total
                if memory:
                    held[kind] += process.memory_full_info().pss
            except psutil.Error:  # the process ended between listing and reading it
                continue
        if memory and sum(held.values()) > peak.get(step, (0,))[0]:
            peak[step] = (sum(held.values()), held)
    reader.join(timeout=5)
    extra = " | peak PSS GB (jvm/driver/worker)" if memory else ""
    head = f"step | wall | jvm cpu | driver cpu | worker cpu | cores busy{extra}"
    log.write(f"\n{head}\n")
    if table is not None:
        table += [f"| {head} |", "|---" + "|---:" * (head.count("|")) + "|"]
    for step in dict.fromkeys(order):
        used = cpu[step]
        busy = sum(used.values()) / max(wall[step], 1e-9)
        line = (
            f"{step} | {wall[step]:.1f} | {used['jvm']:.1f} | {used['driver']:.1f} | "
            f"{used['worker']:.1f} | {busy:.2f}"
        )
        if memory and step in peak:
            total, held = peak[step]
            split = "/".join(f"{held[kind] / 2**30:.2f}" for kind in ("jvm", "driver", "worker"))
            line += f" | {total / 2**30:.2f} ({split})"
        log.write(line + "\n")
        if table is not None:
            table.append(f"| {line} |")
    log.close()
    return proc.returncode or 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log", type=Path, required=True, help="where the output and the table go")
    parser.add_argument("--memory", action="store_true", help="also sample summed PSS per step")
    parser.add_argument("--record", action="store_true", help="write the table into docs/performance.md")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command, after --")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run after --")
    if args.record:
        record.check(["resolve-steps"])
    table: list[str] = []
    code = run(command, args.log, args.memory, table)
    if args.record and code == 0:
        record.record("resolve-steps", table)
    sys.exit(code)


if __name__ == "__main__":
    main()
