"""``services.started``: what a block starts it stops, what was running it leaves running.

Against the real Tansu broker, in a private run dir so the suite's own broker is untouched.
"""

from __future__ import annotations

from pathlib import Path

from idr_pipeline.devtools.services import down, started, status
from idr_pipeline.devtools.services._proc import pid_alive, port_open


def test_a_broker_started_for_a_block_is_stopped_at_its_end(tmp_path: Path) -> None:
    with started(["kafka"], run_dir=tmp_path) as state:
        pid, port = state["kafka"]["pid"], state["kafka"]["port"]
        assert pid_alive(pid) and port_open(port)
    assert state["stopped_at_exit"] == ["kafka"]
    assert not pid_alive(pid)
    assert not status(tmp_path)["kafka"]["running"]


def test_a_broker_that_was_running_is_left_running(tmp_path: Path) -> None:
    with started(["kafka"], run_dir=tmp_path, keep=True) as first:
        pid = first["kafka"]["pid"]
    try:
        assert first["stopped_at_exit"] == [] and pid_alive(pid)
        with started(["kafka"], run_dir=tmp_path) as second:
            assert second["kafka"]["reused"] and second["kafka"]["pid"] == pid
        assert second["stopped_at_exit"] == [] and pid_alive(pid)
    finally:
        down(tmp_path, only=["kafka"])
    assert not pid_alive(pid)
