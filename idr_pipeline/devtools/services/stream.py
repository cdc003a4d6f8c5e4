"""The stream service as a local background service, beside the broker and MariaDB.

``idr services up --only stream`` starts ``idr stream run`` in its own session, with the
environment of the caller (the ``IDR_*`` settings, ``DAGSTER_HOME`` for its reports), and
writes its pid to the services state file, so ``idr services down`` stops it with the rest.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from idr_pipeline.devtools.services._proc import pid_alive, spawn_detached, tail, wait_until

#: Substring of the service's command line (a recycled pid is never taken for it).
COMMAND_MARKER = "idr_pipeline.cli.app stream run"


def start_stream(run_dir: Path, port: int | None = None, timeout: float = 30.0) -> dict[str, Any]:
    """Start the stream service; fail with its log's tail if it exits while starting."""
    log_path = run_dir / "stream" / "stream.log"
    argv = [sys.executable, "-m", "idr_pipeline.cli.app", "stream", "run"]
    pid = spawn_detached(argv, log_path, env=dict(os.environ))

    def started() -> bool:
        if not pid_alive(pid):
            raise RuntimeError(f"the stream service exited while starting; log {log_path}:\n{tail(log_path)}")
        return "stream service running" in log_path.read_text(errors="replace")

    if not wait_until(started, timeout, interval=0.5):
        raise RuntimeError(f"the stream service did not start within {timeout:.0f}s:\n{tail(log_path)}")
    return {"pid": pid, "log": str(log_path), "started_at": time.time()}
