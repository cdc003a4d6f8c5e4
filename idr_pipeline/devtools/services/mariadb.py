"""The local SingleStore stand-in: a private MariaDB server under the run dir.

SingleStore has no small local edition, but it speaks the MySQL protocol, and the store only
switches to SingleStore DDL when the server says it is SingleStore, so MariaDB exercises the
real server backend (client, upsert dialect, transactions, indexes) in dev and CI.

The server gets its own datadir, socket and loopback port and is started with
``--no-defaults``, so it neither reads nor disturbs a system MariaDB that may also be installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from hashlib import sha1
from pathlib import Path
from typing import Any

import singlestoredb as s2

from idr_pipeline.devtools.services._proc import (
    free_port,
    pid_alive,
    port_open,
    spawn_detached,
    stop_pid,
    tail,
    wait_until,
)

DB_NAME = "idr"
DB_USER = "idr"
DB_PASSWORD = "idr"
#: The server binary's usual Debian location, which is not on a non-root user's PATH.
_SBIN_CANDIDATES = ("/usr/sbin/mariadbd", "/usr/local/sbin/mariadbd", "/usr/libexec/mariadbd")
#: Unix sockets paths are limited to ~108 bytes; longer run dirs put the socket in /tmp.
_MAX_SOCKET_PATH = 100


def find_mariadbd() -> str | None:
    """Path of the ``mariadbd`` server binary, or None when MariaDB is not installed."""
    found = shutil.which("mariadbd")
    if found:
        return found
    return next((p for p in _SBIN_CANDIDATES if os.access(p, os.X_OK)), None)


def _find_tool(*names: str) -> str:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    raise RuntimeError(f"none of {names} found on PATH although mariadbd is installed")


def ensure_mariadb_installed() -> str:
    """Return the ``mariadbd`` path, installing Debian's ``mariadb-server`` first if missing.

    Developers' machines and CI are fresh Debian boxes with apt access but no Docker, so the
    package manager is the one way to get a server; sudo is used only when not already root.
    """
    found = find_mariadbd()
    if found:
        return found
    if shutil.which("apt-get") is None:
        raise RuntimeError("mariadbd is not installed and apt-get is unavailable; install MariaDB by hand")
    prefix: list[str] = []
    if os.geteuid() != 0:
        if shutil.which("sudo") is None:
            raise RuntimeError(
                "mariadbd is not installed; need root or sudo to apt-get install mariadb-server"
            )
        prefix = ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (
        [*prefix, "apt-get", "update"],
        [*prefix, "env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "mariadb-server"],
    ):
        for attempt in range(3):
            result = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
            # Another apt run (unattended-upgrades, a parallel job) holding the dpkg lock is
            # the one failure worth waiting out; anything else fails at once.
            if result.returncode == 0 or "lock" not in result.stderr.lower() or attempt == 2:
                break
            time.sleep(15)
        if result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(argv)} failed ({result.returncode}):\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
            )
    found = find_mariadbd()
    if not found:
        raise RuntimeError("apt-get install mariadb-server succeeded but mariadbd is still not found")
    return found


def socket_path(run_dir: Path) -> Path:
    """``<run_dir>/mariadb/mariadb.sock``, or a short /tmp path when that would be too long."""
    path = run_dir.resolve() / "mariadb" / "mariadb.sock"
    if len(str(path)) <= _MAX_SOCKET_PATH:
        return path
    digest = sha1(str(path).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"idr-mariadb-{digest}.sock"


def _user_flag() -> list[str]:
    # mariadbd refuses to run as root unless told to; as anyone else it runs as that user.
    return ["--user=root"] if os.geteuid() == 0 else []


def init_datadir(datadir: Path, log_path: Path) -> None:
    """Create the system tables once; a datadir that already has them is left alone.

    ``--auth-root-authentication-method=normal`` gives root@localhost a (empty) password login
    instead of unix_socket auth tied to the OS root user, so any local user can bootstrap it.
    """
    if (datadir / "mysql").is_dir():
        return
    datadir.mkdir(parents=True, exist_ok=True)
    argv = [
        _find_tool("mariadb-install-db", "mysql_install_db"),
        "--no-defaults",
        f"--datadir={datadir}",
        "--auth-root-authentication-method=normal",
        "--skip-test-db",
        *_user_flag(),
    ]
    with open(log_path, "ab") as log:
        result = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"mariadb-install-db failed ({result.returncode}):\n{tail(log_path)}")


def _client(sock: Path, sql: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    """Run SQL as root over the unix socket with the command-line client (no driver needed)."""
    argv = [
        _find_tool("mariadb", "mysql"),
        "--no-defaults",
        f"--socket={sock}",
        "-uroot",
        "--batch",
        "-e",
        sql,
    ]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


def _socket_ready(sock: Path) -> bool:
    return sock.exists() and _client(sock, "SELECT 1", timeout=5).returncode == 0


def _bootstrap_sql() -> str:
    # IF NOT EXISTS everywhere: runs after every start, also on a datadir kept from before.
    # ALL ON *.* lets tests create and drop throw-away databases; this server is loopback-only
    # and test-only, never the production store.
    return "; ".join(
        [
            f"CREATE DATABASE IF NOT EXISTS {DB_NAME} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
            f"CREATE USER IF NOT EXISTS '{DB_USER}'@'localhost' IDENTIFIED BY '{DB_PASSWORD}'",
            f"CREATE USER IF NOT EXISTS '{DB_USER}'@'127.0.0.1' IDENTIFIED BY '{DB_PASSWORD}'",
            f"GRANT ALL PRIVILEGES ON *.* TO '{DB_USER}'@'localhost' WITH GRANT OPTION",
            f"GRANT ALL PRIVILEGES ON *.* TO '{DB_USER}'@'127.0.0.1' WITH GRANT OPTION",
            "FLUSH PRIVILEGES",
        ]
    )


def store_url(port: int) -> str:
    return f"singlestoredb://{DB_USER}:{DB_PASSWORD}@127.0.0.1:{port}/{DB_NAME}"


def mariadb_healthy(url: str, timeout: float = 5.0) -> bool:
    """True when the ``idr`` user can log in over TCP and run a query, as the store will."""

    try:
        conn = s2.connect(url, connect_timeout=max(1, int(timeout)))
    except Exception:  # the client raises a variety of driver errors; all mean "not healthy"
        return False
    try:
        cursor = conn.cursor()
        cursor.execute("SELECT 1")
        return cursor.fetchall()[0][0] == 1
    except Exception:
        return False
    finally:
        conn.close()


def start_mariadb(run_dir: Path, port: int | None = None, timeout: float = 120.0) -> dict[str, Any]:
    """Install if needed, initialize the datadir once, start the server, create db and user.

    Returns the state entry ``{pid, port, url, socket, datadir, log, started_at}``; raises
    ``RuntimeError`` with the error log's tail when the server does not come up.
    """
    mariadbd = ensure_mariadb_installed()
    base = run_dir.resolve() / "mariadb"
    datadir = base / "data"
    log_path = base / "mariadb.log"
    sock = socket_path(run_dir)
    pid_file = base / "mariadb.pid"
    base.mkdir(parents=True, exist_ok=True)
    init_datadir(datadir, log_path)
    port = free_port(port)
    argv = [
        mariadbd,
        "--no-defaults",
        f"--datadir={datadir}",
        f"--socket={sock}",
        f"--port={port}",
        "--bind-address=127.0.0.1",
        f"--pid-file={pid_file}",
        f"--log-error={log_path}",
        "--skip-name-resolve",
        "--skip-log-bin",
        "--character-set-server=utf8mb4",
        "--collation-server=utf8mb4_bin",
        # The buffer pool holds the serving tables with their indexes and the test databases
        # beside them, so the API's random point reads stay in memory instead of going to disk
        # (MariaDB's default pool is too small for both). Memory is taken as pages are touched,
        # so an idle server stays small.
        # Durability per commit is not needed for a development store: the log is flushed
        # once a second, not at every commit.
        "--innodb-buffer-pool-size=1G",
        "--innodb-log-file-size=48M",
        "--innodb-flush-log-at-trx-commit=2",
        "--max-connections=200",
        *_user_flag(),
    ]
    pid = spawn_detached(argv, log_path)

    def ready() -> bool:
        if not pid_alive(pid):
            raise RuntimeError(f"mariadbd exited during start-up; log {log_path}:\n{tail(log_path)}")
        return port_open(port) and _socket_ready(sock)

    if not wait_until(ready, timeout, interval=0.3):
        stop_pid(pid)
        raise RuntimeError(f"mariadbd did not become ready within {timeout:.0f}s:\n{tail(log_path)}")
    result = _client(sock, _bootstrap_sql())
    if result.returncode != 0:
        stop_pid(pid)
        raise RuntimeError(f"creating database/user failed:\n{result.stderr}")
    url = store_url(port)
    if not wait_until(lambda: mariadb_healthy(url), 30.0, interval=0.5):
        stop_pid(pid)
        raise RuntimeError(f"mariadbd is up but {DB_USER!r} cannot log in over TCP:\n{tail(log_path)}")
    return {
        "pid": pid,
        "port": port,
        "url": url,
        "socket": str(sock),
        "datadir": str(datadir),
        "log": str(log_path),
        "binary": mariadbd,
        "started_at": time.time(),
    }
