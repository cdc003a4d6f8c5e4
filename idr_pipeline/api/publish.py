"""Publishing an unmatched /resolve input to ``idr.profiles`` for the pipeline to pick up.

The message is the raw profile (strings, canonical columns) as the file sources land it:
the stream consumer and standardization then treat it like any other source row, so the API
never writes a half-resolved identity into the store itself.
"""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

from kafka import KafkaProducer

from idr_pipeline.core.schema import CANONICAL_COLUMNS

API_SOURCE = "api"


def profile_message(fields: dict[str, Any]) -> dict[str, Any]:
    """The message for an unmatched input. ``source`` is always ``api``, whatever the client
    sent: survivorship trusts sources by rank, so a client naming the most trusted source (the
    CRM) would make its values win over the CRM's own."""
    message = {c: fields.get(c) for c in CANONICAL_COLUMNS}
    message["record_id"] = f"api-{uuid.uuid4().hex}"
    message["source"] = API_SOURCE
    message["updated_at"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return message


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


class ProfilePublisher:
    """One lazily created producer per process: connecting per request would add a broker
    connection and a metadata round trip to every call."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self._producer: Any = None
        self._lock = threading.Lock()

    def _get(self) -> Any:
        with self._lock:
            if self._producer is None:
                self._producer = KafkaProducer(
                    bootstrap_servers=self.bootstrap,
                    acks="all",
                    # A broker outage fails the call in seconds instead of blocking a worker for a minute.
                    bootstrap_timeout_ms=5000,
                    max_block_ms=5000,
                )
            return self._producer

    def publish(self, fields: dict[str, Any], timeout: float = 10.0) -> str:
        """Send and wait for the broker's ack; returns the new record id."""
        message = profile_message(fields)
        key = f"{message['source']}:{message['record_id']}"
        self._get().send(self.topic, key=key.encode("utf-8"), value=_json_bytes(message)).get(timeout=timeout)
        return message["record_id"]

    def close(self) -> None:
        with self._lock:
            if self._producer is not None:
                self._producer.close(timeout=5)
                self._producer = None
