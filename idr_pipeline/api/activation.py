"""Sending a segment's members somewhere: a customer-match file, a Kafka topic or a webhook.

Only SHA-256 hashes of normalized contact points leave the store, in the form the ad platforms
match on (Google Ads "Formatting guidelines for uploading hashed data", answer 7476159; Meta
Marketing API "Hashing and Normalizing Data"):

* e-mail: trimmed and lower-cased, then hashed (both platforms).
* phone: Google wants E.164 with the ``+`` ("+14155552671"); Meta wants the digits only,
  country code included ("14155552671"). The store already holds E.164, so Meta's form is the
  same number without the plus.
* header: Google's file columns are ``Email`` and ``Phone``; Meta's customer-list columns are
  ``email`` and ``phone``. A member with neither contact point is counted and skipped.

Activations run after the response (FastAPI background task) and record their progress in
the ``activations`` table: pending -> running -> succeeded | failed, with counts.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from kafka import KafkaProducer

from idr_pipeline.api.models import ActivationRequest
from idr_pipeline.settings import IdrSettings
from idr_pipeline.store import IdentityStore

HEADERS = {"google": ("Email", "Phone"), "meta": ("email", "phone")}
_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def normalize_email(email: Any) -> str | None:
    text = str(email or "").strip().lower()
    return text if "@" in text else None


def normalize_phone(phone: Any, fmt: str) -> str | None:
    """E.164 for Google; Meta's digits-with-country-code; None for anything not E.164."""
    text = str(phone or "").strip()
    digits = re.sub(r"\D", "", text)
    if not text.startswith("+") or not 8 <= len(digits) <= 15:
        return None
    return f"+{digits}" if fmt == "google" else digits


def hashed_contact(profile: dict[str, Any], fmt: str) -> dict[str, str | None]:
    email = normalize_email(profile.get("email"))
    phone = normalize_phone(profile.get("phone"), fmt)
    return {
        "email_sha256": sha256_hex(email) if email else None,
        "phone_sha256": sha256_hex(phone) if phone else None,
    }


def validate_target(request: ActivationRequest) -> None:
    """ValueError for a target the destination cannot take (the route answers 422)."""
    if request.destination == "file" and (not _FILE_NAME.match(request.target) or ".." in request.target):
        raise ValueError("file target must be a plain file name: letters, digits, '.', '_' and '-'")
    if request.destination == "kafka" and not _TOPIC.match(request.target):
        raise ValueError("kafka target must be a topic name: letters, digits, '.', '_' and '-'")
    if request.destination == "webhook":
        parts = urlsplit(request.target)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("webhook target must be an http(s) URL")


def member_batches(store: IdentityStore, segment_id: str, size: int) -> Iterator[list[dict[str, Any]]]:
    """Members with their golden e-mail and phone, a keyset page at a time."""
    after: str | None = None
    while True:
        members = store.select_rows(
            "segment_members",
            {"segment_id": segment_id},
            order_by=["identity_id"],
            limit=size,
            after={"identity_id": after} if after is not None else None,
        )
        if not members:
            return
        ids = [m["identity_id"] for m in members]
        profiles = {p["identity_id"]: p for p in store.select_rows("golden_profiles", {"identity_id": ids})}
        yield [{"identity_id": i, **(profiles.get(i) or {})} for i in ids]
        after = ids[-1]
        if len(members) < size:
            return


def new_activation(store: IdentityStore, segment_id: str, request: ActivationRequest) -> dict[str, Any]:
    row = {
        "activation_id": uuid.uuid4().hex,
        "segment_id": segment_id,
        "destination": request.destination,
        "target": request.target,
        "status": "pending",
        "counts": {},
        "error": None,
    }
    store.upsert("activations", [row])
    return row


Sink = Callable[[list[dict[str, Any]]], None]


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


class _FileSink:
    """Writes beside the final name and renames at the end: a reader never sees half a file."""

    def __init__(self, path: Path, fmt: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.tmp = path.with_name(f".{path.name}.tmp")
        self.handle = self.tmp.open("w", newline="", encoding="utf-8")
        self.writer = csv.writer(self.handle)
        self.writer.writerow(HEADERS[fmt])

    def __call__(self, rows: list[dict[str, Any]]) -> None:
        for r in rows:
            self.writer.writerow([r["email_sha256"] or "", r["phone_sha256"] or ""])

    def close(self, ok: bool) -> None:
        self.handle.close()
        if ok:
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)


class _KafkaSink:
    def __init__(self, bootstrap: str, topic: str) -> None:

        self.topic = topic
        self.producer = KafkaProducer(
            bootstrap_servers=bootstrap,
            acks="all",
            # A broker outage fails the call in seconds instead of blocking a worker for a minute.
            bootstrap_timeout_ms=5000,
            max_block_ms=5000,
            linger_ms=5,
        )

    def __call__(self, rows: list[dict[str, Any]]) -> None:
        for r in rows:
            self.producer.send(self.topic, key=r["identity_id"].encode("utf-8"), value=_json_bytes(r))
        self.producer.flush(timeout=30)

    def close(self, ok: bool) -> None:
        self.producer.close(timeout=10)


class _WebhookSink:
    def __init__(self, url: str, activation_id: str, segment_id: str) -> None:

        self.url = url
        self.client = httpx.Client(timeout=10.0)
        self.base = {"activation_id": activation_id, "segment_id": segment_id}
        self.batch = 0

    def __call__(self, rows: list[dict[str, Any]]) -> None:
        self.batch += 1
        response = self.client.post(self.url, json={**self.base, "batch": self.batch, "members": rows})
        response.raise_for_status()

    def close(self, ok: bool) -> None:
        self.client.close()


def _sink(settings: IdrSettings, row: dict[str, Any], fmt: str) -> Any:
    if row["destination"] == "file":
        return _FileSink(Path(settings.api_export_dir) / row["target"], fmt)
    if row["destination"] == "kafka":
        return _KafkaSink(settings.kafka_bootstrap_servers, row["target"])
    return _WebhookSink(row["target"], row["activation_id"], row["segment_id"])


def run_activation(store: IdentityStore, settings: IdrSettings, row: dict[str, Any], fmt: str) -> None:
    """Export every member, recording status and counts; never raises (the status says why)."""
    row = {**row, "status": "running"}
    store.upsert("activations", [row])
    counts = {"members": 0, "exported": 0, "skipped_no_contact": 0, "emails": 0, "phones": 0, "batches": 0}
    sink = None
    try:
        sink = _sink(settings, row, fmt)
        for batch in member_batches(store, row["segment_id"], settings.api_activation_batch_size):
            out = []
            for member in batch:
                counts["members"] += 1
                hashed = hashed_contact(member, fmt)
                if not (hashed["email_sha256"] or hashed["phone_sha256"]):
                    counts["skipped_no_contact"] += 1
                    continue
                counts["emails"] += hashed["email_sha256"] is not None
                counts["phones"] += hashed["phone_sha256"] is not None
                out.append({"identity_id": member["identity_id"], **hashed})
            if out:
                sink(out)
                counts["exported"] += len(out)
                counts["batches"] += 1
        sink.close(ok=True)
        row.update(status="succeeded", counts=counts, error=None)
    except Exception as exc:  # the activation's status is the error report
        if sink is not None:
            try:
                sink.close(ok=False)
            except Exception:  # pragma: no cover - the original error matters more
                pass
        row.update(status="failed", counts=counts, error=f"{type(exc).__name__}: {exc}"[:2000])
    row["updated_at"] = datetime.now(UTC).replace(tzinfo=None)
    store.upsert("activations", [row])
