"""A lake writer that stalls while replacing the ``_LATEST`` pointer, for the test to kill it.

Run as ``python -m idr_pipeline_tests.core.pointer_writer LAKE_URI STALL_AT``: it writes a new
version of the dataset ``t/ds`` and, when the pointer's write reaches ``STALL_AT``, prints
``STALLED`` and waits to be killed. ``write``: the file has been created but holds no byte yet;
``close``: the file is complete and closed, nothing renamed yet.
"""

from __future__ import annotations

import sys
import time

import pandas as pd

from idr_pipeline.core.lake import Lake
from idr_pipeline.core.spark import get_spark


def _stall() -> None:
    print("STALLED", flush=True)
    time.sleep(3600)


class _StallingStream:
    def __init__(self, stream, stall_at: str) -> None:
        self._stream, self._stall_at = stream, stall_at

    def write(self, data) -> None:
        if self._stall_at == "write":
            _stall()
        self._stream.write(data)

    def close(self) -> None:
        self._stream.close()
        if self._stall_at == "close":
            _stall()


class _StallingFileSystem:
    """A Hadoop FileSystem whose created files stall; every other call goes through."""

    def __init__(self, fs, stall_at: str) -> None:
        self._fs, self._stall_at = fs, stall_at

    def __getattr__(self, name: str):
        attr = getattr(self._fs, name)
        if name == "create":
            return lambda *args: _StallingStream(attr(*args), self._stall_at)
        if name == "getRawFileSystem":
            return lambda: _StallingFileSystem(attr(), self._stall_at)
        return attr


def main(lake_uri: str, stall_at: str) -> None:
    lake = Lake(lake_uri, get_spark())
    real_fs_path = Lake._fs_path

    def stalling_fs_path(self: Lake, path: str):
        fs, hpath = real_fs_path(self, path)
        return _StallingFileSystem(fs, stall_at), hpath

    Lake._fs_path = stalling_fs_path
    lake.write_pandas_version(pd.DataFrame({"x": [9, 9, 9]}), "t", "ds")
    print("FINISHED without stalling", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
