"""Process and port helpers shared by the service launchers.

The services are started detached (their own session) so they outlive the ``idr services up``
command that started them; everything here therefore works from a pid alone, never from a
``Popen`` object that only the starting process would hold.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

#: Popen objects of the children this process started: kept so Python neither warns about
#: a still-running child on garbage collection nor leaves it a zombie after it exits.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def free_port(preferred: int | None = None) -> int:
    """``preferred`` when it can be bound on loopback, else a port the kernel hands out.

    Reusing the previous port keeps endpoints stable across a restart of one service.
    """
    if preferred:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", preferred))
                return preferred
            except OSError:
                pass
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _reap(pid: int) -> None:
    child = _CHILDREN.get(pid)
    if child is not None and child.poll() is not None:
        del _CHILDREN[pid]


def pid_alive(pid: int | None) -> bool:
    """True for a live process; a zombie (exited, not yet reaped) counts as dead."""
    if not pid:
        return False
    _reap(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no procfs: kill(0) is the best we have
    # The state letter follows the parenthesised command name, which may itself hold spaces.
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def pid_command(pid: int) -> str:
    """The process' command line as one string ('' when unknown), to guard against pid reuse."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def spawn_detached(argv: Sequence[str], log_path: Path, env: Mapping[str, str] | None = None) -> int:
    """Start ``argv`` in a new session with output appended to ``log_path``; return its pid.

    A new session means a Ctrl-C in the starting terminal (or pytest finishing) does not take
    the service down with it, and the service's pid is also its process-group id.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        child = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            env=dict(env) if env is not None else None,
        )
    _CHILDREN[child.pid] = child
    return child.pid


def stop_pid(pid: int | None, grace: float = 15.0) -> bool:
    """SIGTERM the process group, then SIGKILL after ``grace`` seconds; True if it was running."""
    if not pid_alive(pid):
        return False
    assert pid is not None
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return True
        except PermissionError:
            os.kill(pid, sig)
        if wait_until(lambda: not pid_alive(pid), wait, interval=0.1):
            return True
    return True


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.25) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds pass; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def tail(path: Path, lines: int = 30) -> str:
    """The end of a log file, for error messages that explain why a service did not come up."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"
