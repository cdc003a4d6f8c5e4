"""The two Spark steps of a resolve alone, on a landed raw zone: standardizing and linking.

A whole ``idr resolve`` at a million records takes over two minutes, and its Spark steps move
by a few seconds between runs; comparing JVM options or a change to a Spark job needs those
steps alone, each in a fresh JVM, runs interleaved. The raw zone is landed once into
``--landed`` and copied for every run, so each run starts from the same files.

    .venv/bin/python benchmarks/spark_steps.py --inputs data/benchmarks/gen1m/ours
    IDR_SPARK_DRIVER_JAVA_OPTIONS="-XX:+UseG1GC" .venv/bin/python benchmarks/spark_steps.py ...

Prints each step's wall seconds and the CPU seconds of the JVM and of the Python processes
(Spark's workers), then the JVM's resident memory and committed heap before and after
``release_jvm_memory``: what the JVM keeps while the pandas steps of a resolve run beside it.
"""

from __future__ import annotations

import argparse
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import psutil

GB = 1e9


def _cpu_seconds(kind: str) -> float:
    """CPU seconds of this process's children whose name holds ``kind`` (java, python)."""
    total = 0.0
    for child in psutil.Process().children(recursive=True):
        try:
            if kind in child.name():
                total += sum(child.cpu_times()[:2])
        except psutil.Error:
            continue
    return total


def _jvm_memory(spark) -> str:
    rss = sum(c.memory_info().rss for c in psutil.Process().children(recursive=True) if "java" in c.name())
    runtime = spark.sparkContext._jvm.java.lang.Runtime.getRuntime()
    heap, free = runtime.totalMemory() / GB, runtime.freeMemory() / GB
    return f"JVM RSS {rss / GB:.2f} GB, heap committed {heap:.2f} GB ({heap - free:.2f} GB used)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=Path, required=True, help="a folder of `idr generate` files")
    parser.add_argument("--landed", type=Path, default=Path("data/benchmarks/spark_steps_landed"))
    parser.add_argument("--work", type=Path, default=Path("data/benchmarks/spark_steps_work"))
    parser.add_argument("--steps", choices=["clean", "both"], default="both")
    args = parser.parse_args()

    from idr_pipeline.cli.resolve import mappings_for_inputs
    from idr_pipeline.core.lake import Lake
    from idr_pipeline.core.spark import get_spark, release_jvm_memory
    from idr_pipeline.graph.blocklist import load_blocklist
    from idr_pipeline.graph.steps import run_edges
    from idr_pipeline.ingest.landing import land_batch, read_batch
    from idr_pipeline.settings import get_settings
    from idr_pipeline.standardize.steps import run_cleaning

    files = sorted(p for p in args.inputs.iterdir() if p.suffix in {".csv", ".jsonl", ".parquet"})
    files = [p for p in files if p.stem != "truth"]
    paired = mappings_for_inputs(files, args.inputs / "sources.yaml")
    settings = get_settings()
    spark = get_spark(settings)
    if not args.landed.exists():
        lake = Lake((args.landed / "lake").resolve().as_uri(), spark)
        for mapping, path in paired.values():
            land_batch(lake, read_batch(mapping, path))
    shutil.rmtree(args.work, ignore_errors=True)
    shutil.copytree(args.landed, args.work)
    lake = Lake((args.work / "lake").resolve().as_uri(), spark)
    mappings = {name: mapping for name, (mapping, _path) in paired.items()}
    steps: list[tuple[str, Callable[[], object]]] = [
        ("standardizing", lambda: run_cleaning(spark, lake, mappings, settings.default_phone_region, {})),
        (
            "linking",
            lambda: run_edges(
                spark, lake, load_blocklist(settings.blocklist_path), settings.max_people_per_identifier
            ),
        ),
    ]
    try:
        for name, step in steps[: 1 if args.steps == "clean" else 2]:
            jvm, python, started = _cpu_seconds("java"), _cpu_seconds("python"), time.time()
            step()
            print(
                f"{name}: wall {time.time() - started:.1f} s, JVM CPU {_cpu_seconds('java') - jvm:.1f} s, "
                f"Python CPU {_cpu_seconds('python') - python:.1f} s",
                flush=True,
            )
        print(f"before release_jvm_memory: {_jvm_memory(spark)}")
        release_jvm_memory(spark)
        time.sleep(2)
        print(f"after release_jvm_memory:  {_jvm_memory(spark)}")
    finally:
        shutil.rmtree(args.work, ignore_errors=True)


if __name__ == "__main__":
    main()
