"""Dev/test services: a Kafka-protocol broker (Tansu) and MariaDB standing in for SingleStore.

Both run as plain local processes under the run dir, because developers' machines and CI have
no Docker. ``up``/``down``/``status`` are what ``idr services`` and the test fixtures call;
``service_endpoints`` is how code finds them.
"""

from idr_pipeline.devtools.services.manager import (
    ENV_KAFKA,
    ENV_STORE,
    down,
    read_state,
    resolve_run_dir,
    service_endpoints,
    started,
    status,
    up,
)

__all__ = [
    "ENV_KAFKA",
    "ENV_STORE",
    "down",
    "read_state",
    "resolve_run_dir",
    "service_endpoints",
    "started",
    "status",
    "up",
]
