"""The ``_LATEST`` pointer is replaced atomically: a writer killed mid-way changes nothing.

Real parts: local Spark's Hadoop filesystem in this process and in a writer process, which
is killed (SIGKILL, with its JVM) while it replaces the pointer; see ``pointer_writer.py``.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from idr_pipeline.core.lake import Lake

REPO = Path(__file__).resolve().parents[2]


def _stalled_writer(lake_uri: str, stall_at: str, timeout: float = 300.0) -> subprocess.Popen:
    """Start the writer and return once it says it stalled where asked."""
    env = {**os.environ, "IDR_SPARK_DRIVER_MEMORY": "1g", "PYSPARK_PYTHON": sys.executable}
    proc = subprocess.Popen(
        [sys.executable, "-m", "idr_pipeline_tests.core.pointer_writer", lake_uri, stall_at],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if selector.select(timeout=1.0):
                line = proc.stdout.readline()
                if line.strip() == "STALLED":
                    return proc
                if not line:
                    break
    os.killpg(proc.pid, signal.SIGKILL)
    raise AssertionError(f"the writer never stalled at {stall_at!r} (exit {proc.wait()})")


@pytest.mark.parametrize("stall_at", ["write", "close"])
def test_a_writer_killed_while_replacing_the_pointer_leaves_the_previous_version(
    tmp_path: Path, spark, stall_at: str
):
    lake_uri = (tmp_path / "lake").as_uri()
    lake = Lake(lake_uri, spark)
    first = lake.write_pandas_version(pd.DataFrame({"x": [1, 2]}), "t", "ds")

    writer = _stalled_writer(lake_uri, stall_at)
    os.killpg(writer.pid, signal.SIGKILL)
    writer.wait()

    assert lake.latest_version("t", "ds") == first
    assert lake.read_latest_pandas("t", "ds").x.tolist() == [1, 2]
    dataset = tmp_path / "lake" / "t" / "ds"
    assert [p.name for p in dataset.iterdir() if p.name.endswith(".tmp")], "killed before the temporary file"

    # The leftover temporary file is ignored: the next write publishes as usual.
    second = lake.write_pandas_version(pd.DataFrame({"x": [3]}), "t", "ds")
    assert lake.latest_version("t", "ds") == second
    assert lake.read_latest_pandas("t", "ds").x.tolist() == [3]


def test_a_pointer_left_by_the_checksummed_writer_still_reads(tmp_path: Path, spark):
    """Lakes written before the pointer was replaced atomically carry a ``._LATEST.crc``."""
    lake = Lake((tmp_path / "lake").as_uri(), spark)
    first = lake.write_pandas_version(pd.DataFrame({"x": [1]}), "t", "ds")
    fs, pointer = lake._fs_path(lake.path("t", "ds", "_LATEST"))  # Hadoop's checksummed local fs
    out = fs.create(pointer, True)
    out.write(bytearray(first.encode()))
    out.close()
    assert (tmp_path / "lake" / "t" / "ds" / "._LATEST.crc").exists()

    assert lake.latest_version("t", "ds") == first
    second = lake.write_pandas_version(pd.DataFrame({"x": [2]}), "t", "ds")
    assert lake.latest_version("t", "ds") == second
    assert not (tmp_path / "lake" / "t" / "ds" / "._LATEST.crc").exists()
