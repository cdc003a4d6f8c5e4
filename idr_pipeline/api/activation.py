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

Activations run on their own bounded pool (:class:`ActivationRunner`), never on the threads
that serve routes, and record their progress in the ``activations`` table: pending -> running
-> succeeded | failed, with counts. Each belongs to the key that started it.

Targets are checked before anything is sent (:func:`validate_target`):

* file: a plain file name under ``IDR_API_EXPORT_DIR`` (the whole name must match).
* kafka: a topic starting with ``IDR_KAFKA_ACTIVATION_TOPIC_PREFIX``, never one of the
  pipeline's own topics.
* webhook: https to a host on ``IDR_WEBHOOK_ALLOWED_HOSTS`` (empty: no webhooks) whose every
  address is public: loopback, private, link-local (the cloud metadata address), shared and
  reserved addresses are refused after DNS resolution, and again when sending, where the
  connection goes to the address that was checked (a DNS answer that changes in between cannot
  redirect it). ``IDR_WEBHOOK_DEV_MODE`` lifts the address rule and allows http, for
  development. Redirects are not followed. Every request carries ``X-IDR-Timestamp`` and
  ``X-IDR-Signature: v1=<hex HMAC-SHA256 of "<timestamp>.<body>" under the webhook signing
  key>`` (:func:`webhook_signature`).

An activation's ``error`` says what went wrong in words that name no address or host (a DNS
or connection error would otherwise print internal addresses); the full error is logged.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import ipaddress
import json
import logging
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from kafka import KafkaProducer

from idr_pipeline.api.models import ActivationRequest
from idr_pipeline.core.secrets import webhook_signing_key
from idr_pipeline.settings import IdrSettings
from idr_pipeline.store import IdentityStore

log = logging.getLogger(__name__)

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


class TargetRefused(ValueError):
    """The target is not one this server may send to; the message names no address."""


def allowed_host(host: str, allowed: str) -> bool:
    """``host`` equals an entry of the comma-separated ``allowed`` list, or is a subdomain of a
    ``*.domain`` entry (``*.example.com`` allows ``a.example.com``, not ``example.com``)."""
    host = host.lower().rstrip(".")
    for entry in (e.strip().lower().rstrip(".") for e in allowed.split(",")):
        if not entry:
            continue
        if entry.startswith("*."):
            if host.endswith(entry[1:]) and len(host) > len(entry) - 1:
                return True
        elif host == entry:
            return True
    return False


def public_address(address: str) -> bool:
    """Globally routable: not loopback, private, link-local (metadata), shared, reserved or
    multicast; an IPv4-mapped IPv6 address is judged as its IPv4 address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


@dataclass(frozen=True)
class WebhookTarget:
    url: str
    scheme: str
    host: str
    port: int
    path: str
    addresses: tuple[str, ...]


def check_webhook(url: str, settings: IdrSettings) -> WebhookTarget:
    """The checked target with the addresses it may be reached at; TargetRefused otherwise."""
    parts = urlsplit(url)
    allowed_schemes = ("https", "http") if settings.webhook_dev_mode else ("https",)
    if parts.scheme not in allowed_schemes:
        raise TargetRefused(f"webhook target must be an {' or '.join(allowed_schemes)} URL")
    if not parts.hostname or parts.username is not None or parts.password is not None:
        raise TargetRefused("webhook target must name a host, without user or password")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise TargetRefused("webhook target has an invalid port") from None
    if not settings.webhook_allowed_hosts.strip():
        raise TargetRefused("webhook activations are disabled: IDR_WEBHOOK_ALLOWED_HOSTS is empty")
    if not allowed_host(parts.hostname, settings.webhook_allowed_hosts):
        raise TargetRefused("webhook host is not on IDR_WEBHOOK_ALLOWED_HOSTS")
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise TargetRefused("webhook host does not resolve") from None
    addresses = tuple(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise TargetRefused("webhook host does not resolve")
    if not settings.webhook_dev_mode and not all(public_address(a) for a in addresses):
        raise TargetRefused("webhook host resolves to a loopback, private, link-local or reserved address")
    path = parts.path or "/"
    if parts.query:
        path += f"?{parts.query}"
    return WebhookTarget(url, parts.scheme, parts.hostname, port, path, addresses)


def check_topic(topic: str, settings: IdrSettings) -> None:
    prefix = settings.kafka_activation_topic_prefix
    if not prefix:
        raise TargetRefused("kafka activations are disabled: IDR_KAFKA_ACTIVATION_TOPIC_PREFIX is empty")
    if not _TOPIC.fullmatch(topic) or topic in (".", ".."):
        raise TargetRefused("kafka target must be a topic name: letters, digits, '.', '_' and '-'")
    if topic in {settings.events_topic, settings.profiles_topic}:
        raise TargetRefused("kafka target must not be one of the pipeline's own topics")
    if not topic.startswith(prefix) or len(topic) == len(prefix):
        raise TargetRefused(f"kafka target must start with {prefix!r} (IDR_KAFKA_ACTIVATION_TOPIC_PREFIX)")


def validate_target(request: ActivationRequest, settings: IdrSettings) -> None:
    """TargetRefused for a target the destination cannot or may not take (the route: 422)."""
    if request.destination == "file" and (not _FILE_NAME.fullmatch(request.target) or ".." in request.target):
        raise TargetRefused("file target must be a plain file name: letters, digits, '.', '_' and '-'")
    if request.destination == "kafka":
        check_topic(request.target, settings)
    if request.destination == "webhook":
        check_webhook(request.target, settings)


def webhook_signature(key: bytes, timestamp: str, body: bytes) -> str:
    """``v1=<hex HMAC-SHA256 of "<timestamp>.<body>">``: what ``X-IDR-Signature`` carries."""
    mac = hmac.new(key, timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()
    return f"v1={mac}"


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


def new_activation(
    store: IdentityStore, segment_id: str, request: ActivationRequest, owner_key_id: str
) -> dict[str, Any]:
    row = {
        "activation_id": uuid.uuid4().hex,
        "segment_id": segment_id,
        "destination": request.destination,
        "target": request.target,
        "status": "pending",
        "counts": {},
        "error": None,
        "owner_key_id": owner_key_id,
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
    """POSTs signed JSON batches to the checked target, connecting to a checked address."""

    def __init__(
        self, settings: IdrSettings, url: str, activation_id: str, segment_id: str, key: bytes
    ) -> None:
        self.settings = settings
        self.url = url
        self.key = key
        self.client = httpx.Client(timeout=10.0, follow_redirects=False)
        self.base = {"activation_id": activation_id, "segment_id": segment_id}
        self.batch = 0

    def __call__(self, rows: list[dict[str, Any]]) -> None:
        self.batch += 1
        # Checked again at each send: the DNS answer may have changed since the request.
        target = check_webhook(self.url, self.settings)
        address = target.addresses[0]
        literal = f"[{address}]" if ":" in address else address
        default_port = 443 if target.scheme == "https" else 80
        host_header = target.host if target.port == default_port else f"{target.host}:{target.port}"
        body = _json_bytes({**self.base, "batch": self.batch, "members": rows})
        timestamp = str(int(time.time()))
        response = self.client.post(
            f"{target.scheme}://{literal}:{target.port}{target.path}",
            content=body,
            headers={
                "Host": host_header,
                "Content-Type": "application/json",
                "X-IDR-Timestamp": timestamp,
                "X-IDR-Signature": webhook_signature(self.key, timestamp, body),
            },
            # TLS is verified against the host name, not the address connected to.
            extensions={"sni_hostname": target.host} if target.scheme == "https" else {},
        )
        if not response.is_success:
            raise WebhookStatus(response.status_code)

    def close(self, ok: bool) -> None:
        self.client.close()


class WebhookStatus(Exception):
    def __init__(self, status_code: int) -> None:
        super().__init__(f"webhook answered HTTP {status_code}")
        self.status_code = status_code


def _sink(settings: IdrSettings, row: dict[str, Any], fmt: str, signing_key: bytes) -> Any:
    if row["destination"] == "file":
        return _FileSink(Path(settings.api_export_dir) / row["target"], fmt)
    if row["destination"] == "kafka":
        check_topic(row["target"], settings)
        return _KafkaSink(settings.kafka_bootstrap_servers, row["target"])
    return _WebhookSink(settings, row["target"], row["activation_id"], row["segment_id"], signing_key)


def public_error(exc: BaseException) -> str:
    """What the activation's ``error`` may say: the kind of failure, never an address or host."""
    if isinstance(exc, TargetRefused | WebhookStatus):
        return str(exc)
    if isinstance(exc, httpx.TimeoutException):
        return "the webhook did not answer in time"
    if isinstance(exc, httpx.TransportError):
        return "could not connect to the webhook"
    module = type(exc).__module__ or ""
    if module.startswith("kafka"):
        return f"Kafka error: {type(exc).__name__}"
    if isinstance(exc, OSError):
        return f"could not write the export ({type(exc).__name__})"
    return f"activation failed ({type(exc).__name__})"


def run_activation(
    store: IdentityStore, settings: IdrSettings, row: dict[str, Any], fmt: str, signing_key: bytes = b""
) -> None:
    """Export every member, recording status and counts; never raises (the status says why)."""
    row = {**row, "status": "running"}
    store.upsert("activations", [row])
    counts = {"members": 0, "exported": 0, "skipped_no_contact": 0, "emails": 0, "phones": 0, "batches": 0}
    sink = None
    try:
        sink = _sink(settings, row, fmt, signing_key)
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
        log.warning("activation %s failed", row["activation_id"], exc_info=True)
        if sink is not None:
            try:
                sink.close(ok=False)
            except Exception:  # pragma: no cover - the original error matters more
                pass
        row.update(status="failed", counts=counts, error=public_error(exc))
    row["updated_at"] = datetime.now(UTC).replace(tzinfo=None)
    store.upsert("activations", [row])


class ActivationsBusy(Exception):
    """Every activation worker is busy and the queue is full."""


class ActivationRunner:
    """Runs activations on ``workers`` threads of their own, each with its own store
    connection, so a slow destination (an unreachable broker blocks a producer for seconds)
    never holds a thread the routes need. At most ``queue`` more wait; past that ``submit``
    raises ActivationsBusy (the route answers 429)."""

    def __init__(
        self, settings: IdrSettings, open_store: Callable[[], IdentityStore], workers: int, queue: int
    ) -> None:
        self.settings = settings
        self.open_store = open_store
        self.signing_key = webhook_signing_key(settings)
        self._executor = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="activation")
        self._slots = threading.BoundedSemaphore(max(1, workers) + max(0, queue))

    def submit(self, row: dict[str, Any], fmt: str) -> None:
        if not self._slots.acquire(blocking=False):
            raise ActivationsBusy("too many activations are running or queued; retry later")
        try:
            self._executor.submit(self._run, row, fmt)
        except BaseException:
            self._slots.release()
            raise

    def _run(self, row: dict[str, Any], fmt: str) -> None:
        try:
            store = self.open_store()
            try:
                run_activation(store, self.settings, row, fmt, self.signing_key)
            finally:
                store.close()
        except Exception:  # pragma: no cover - the store itself failed; nothing to record it in
            log.exception("activation %s could not run", row.get("activation_id"))
        finally:
            self._slots.release()

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
