"""One connection reading identities while ``publish_worker.py`` publishes: does the store make
readers wait behind the publish? No API, no load generator, so only the store is measured.

    .venv/bin/python benchmarks/publish_read_probe.py --store-url URL --commit-rows 0      # one transaction per table
    .venv/bin/python benchmarks/publish_read_probe.py --store-url URL --commit-rows 5000

Reads one identity (``get_identity``, the API's read) about every 20 ms for as long as the
publish runs and prints, per 50 reads, the median and the slowest read. The store must hold
the identities ``api_load.py`` seeds.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from api_load_people import identity_id  # noqa: E402

from idr_pipeline.store import open_store  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store-url", required=True)
    parser.add_argument("--commit-rows", type=int, default=5000)
    parser.add_argument("--identities", type=int, default=100_000)
    args = parser.parse_args()
    reader = open_store(args.store_url)
    publisher = subprocess.Popen(
        [sys.executable, str(ROOT / "benchmarks" / "publish_worker.py"), "--store-url", args.store_url,
         "--identities", str(args.identities), "--commit-rows", str(args.commit_rows)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert publisher.stdout is not None
    print(publisher.stdout.readline().strip(), flush=True)
    started, window, i = time.perf_counter(), [], 0
    while publisher.poll() is None:
        t = time.perf_counter()
        reader.get_identity(identity_id((i * 7919) % args.identities))
        window.append((time.perf_counter() - t) * 1000)
        i += 1
        if len(window) == 50:
            print(f"t={time.perf_counter() - started:6.1f} s  50 reads: median {statistics.median(window):6.1f} ms, "
                  f"slowest {max(window):7.1f} ms", flush=True)  # fmt: skip
            window = []
        time.sleep(0.02)
    print(publisher.stdout.read().strip())
    reader.close()


if __name__ == "__main__":
    main()
