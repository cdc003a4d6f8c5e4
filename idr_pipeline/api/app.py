"""The FastAPI application: ``create_app(settings)`` wires state, limits and routes.

Startup loads everything a request must not wait for (match model, Faiss index, blocking
index, and the embedding model when the index has vectors to search). A missing model or index
does not stop the API: ``/health`` reports it and ``/resolve`` degrades to deterministic
look-ups, because serving identities must not depend on the probabilistic stage having run.
"""

from __future__ import annotations

import gc
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
import numpy as np
import pandas as pd
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from idr_pipeline.api.activation import ActivationRunner
from idr_pipeline.api.keys import KeyCache
from idr_pipeline.api.limits import KeyUseRecorder, RateLimiter
from idr_pipeline.api.loading import load_index, load_model
from idr_pipeline.api.lookalike import BehaviorIndexCache
from idr_pipeline.api.publish import ProfilePublisher
from idr_pipeline.api.resolve import Resolver
from idr_pipeline.api.routes_audience import router as audience_router
from idr_pipeline.api.routes_changes import router as changes_router
from idr_pipeline.api.routes_read import router as read_router
from idr_pipeline.api.routes_write import router as write_router
from idr_pipeline.api.state import AppState, StorePool
from idr_pipeline.candidates.embedding import profile_text
from idr_pipeline.candidates.faiss_index import FaissCandidateIndex
from idr_pipeline.candidates.profile_encoders import ProfileEncoder, profile_encoder
from idr_pipeline.core.secrets import tombstone_key
from idr_pipeline.settings import IdrSettings, get_settings
from idr_pipeline.store import IdentityStore

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class BodySizeLimit:
    """413 for bodies over ``max_bytes``: by Content-Length up front, else while streaming in.

    Pydantic limits field sizes only after the whole body is read into memory; this stops a
    huge (or endless chunked) body before that.
    """

    def __init__(self, app: Callable[..., Awaitable[None]], max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _reject(self, send: Send) -> None:
        body = b'{"detail":"request body too large"}'
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None:
            try:
                too_big = int(length) > self.max_bytes
            except ValueError:
                too_big = True
            if too_big:
                await self._reject(send)
                return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._reject(send)


class _TooLarge(Exception):
    pass


def _embedder(encoder: ProfileEncoder) -> Callable[[list[dict[str, Any]]], np.ndarray]:
    """Profile rows -> unit vectors, with the encoder the index was built with."""

    def embed(rows: list[dict[str, Any]]) -> np.ndarray:
        return encoder.encode(profile_text(pd.DataFrame(rows)))

    embed([{"first_name": "warm", "last_name": "up"}])
    return embed


def _index_encoder(settings: IdrSettings, index: FaissCandidateIndex) -> ProfileEncoder:
    """The configured profile encoder, refused when its vectors do not fit the index."""
    encoder = profile_encoder(settings.embed_encoder, settings.embedding_model_path, settings.embed_quantize)
    if encoder.dim != index.dim:
        raise ValueError(
            f"the index holds {index.dim}-dimensional vectors but IDR_EMBED_ENCODER={settings.embed_encoder} "
            f"gives {encoder.dim}; rebuild the index (the faiss_index asset) with this encoder"
        )
    return encoder


def _index_neighbors(state: AppState, k: int = 10) -> Callable[[IdentityStore, dict[str, Any]], list[str]]:
    """Identity ids of the query's nearest embedded records: the batch's embedding generator."""

    def neighbors(store: IdentityStore, query: dict[str, Any]) -> list[str]:
        if state.index is None or state.embedder is None or len(state.index) == 0:
            return []
        vector = state.embedder([query])
        with state.index_lock:
            names, _ = state.index.search(vector, k)
        records = [str(n) for n in names[0].tolist() if n is not None]
        if not records:
            return []
        return [r["identity_id"] for r in store.select_rows("record_links", {"record_id": records})]

    return neighbors


def build_state(settings: IdrSettings) -> AppState:
    pool = StorePool(settings.store_url)
    pool.get().ensure_schema()
    state = AppState(
        settings=settings,
        pool=pool,
        key_cache=KeyCache(settings.api_key_cache_seconds),
        limiter=RateLimiter.from_settings(settings),
        key_use=KeyUseRecorder(pool.open_unpooled),
        activations=ActivationRunner(
            settings, pool.open_unpooled, settings.api_activation_workers, settings.api_activation_queue
        ),
        tombstone_key=tombstone_key(settings),
        behavior=BehaviorIndexCache(settings.index_dir),
    )
    try:
        state.model = load_model(settings)
    except Exception as exc:
        state.model_error = f"{type(exc).__name__}: {exc}"
        log.warning("no match model: /resolve is deterministic only (%s)", state.model_error)
    try:
        state.index = load_index(settings.index_dir)
    except Exception as exc:
        state.index_error = f"{type(exc).__name__}: {exc}"
        log.warning("no Faiss index: /similar answers nothing (%s)", state.index_error)
    if state.index is not None and len(state.index):
        try:
            state.encoder = _index_encoder(settings, state.index)
            state.embedder = _embedder(state.encoder)
        except Exception as exc:
            state.encoder = None
            state.index_error = f"embedding encoder: {type(exc).__name__}: {exc}"
            log.warning("no profile encoder for the index: /similar answers nothing (%s)", state.index_error)
    state.resolver = Resolver(
        state.model,
        settings.match_threshold,
        settings.default_phone_region,
        neighbors=_index_neighbors(state),
        ambiguity_margin=settings.ambiguity_margin_bits,
        possible_threshold=settings.possible_match_threshold,
    )
    state.resolver.refresh(pool.get())
    state.publisher = ProfilePublisher(settings.kafka_bootstrap_servers, settings.profiles_topic)
    return state


def create_app(settings: IdrSettings | None = None, *, freeze_gc: bool = False) -> FastAPI:
    """The app; ``freeze_gc`` (set by ``idr serve``) moves everything alive after start-up out
    of the garbage collector's sight (``gc.freeze``).

    A full collection walks every tracked object, and with the imports, model and blocking
    index loaded that is a long pause during which every request in flight waits (it shows as
    the latency tail under load). Frozen objects are never collected, which is
    right for what start-up loads and keeps for the process's life; it is off by default so
    tests that build many apps in one process do not pin each one's leftovers.
    """
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = build_state(settings)
        app.state.idr = state
        # Sync routes run on anyio's default thread limiter; one connection per thread is
        # opened now, not inside the first requests.
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.api_threads
        # Identity reads and key look-ups wait for the store on threads of their own.
        state.read_limiter = anyio.CapacityLimiter(settings.api_read_threads)
        state.pool.prewarm(settings.api_threads + settings.api_read_threads)
        if freeze_gc:
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            state.publisher.close()
            if state.activations is not None:
                state.activations.close()
            if state.key_use is not None:
                state.key_use.close()
            state.pool.close()

    docs = settings.api_docs
    app = FastAPI(
        title="idr_pipeline API",
        version="1.0",
        description=(
            "Identity look-up, real-time resolve, audience queries, segment activation and erasure. "
            "Send an API key as `X-API-Key` (or `Authorization: Bearer`); scopes: read, pii, export, "
            "activate, admin."
        ),
        lifespan=lifespan,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
    )
    app.include_router(read_router)
    app.include_router(audience_router)
    app.include_router(changes_router)
    app.include_router(write_router)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_middleware(BodySizeLimit, max_bytes=settings.api_max_body_bytes)
    return app


#: Text that may stand in a validation error's location: a field name from the models.
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_\-\[\]()., ]{0,80}")


def _safe(text: object, limit: int = 200) -> str:
    """ASCII only (a lone surrogate or any other code point escaped), bounded."""
    return str(text).encode("ascii", "backslashreplace").decode("ascii")[:limit]


def validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    """Location, type and message of each error, without the submitted input or context.

    An unknown field's name is the client's text, so it is not repeated; messages come from
    the models' constraints (and our validators), never from the input.
    """
    out: list[dict[str, Any]] = []
    for error in list(exc.errors())[:20]:
        kind = _safe(error.get("type", ""), 64)
        loc: list[int | str] = []
        parts = list(error.get("loc") or ())
        for n, part in enumerate(parts):
            if isinstance(part, int):
                loc.append(part)
            elif kind == "extra_forbidden" and n == len(parts) - 1:
                loc.append("<unknown field>")
            else:
                text = _safe(part, 80)
                loc.append(text if _NAME.fullmatch(text) else "<field>")
        out.append({"loc": loc, "type": kind, "msg": _safe(error.get("msg", ""))})
    return out


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    """422 for a request the models refuse; never echoes the input, never fails itself (a NaN
    or a lone surrogate in the input broke the default handler, which also logged it)."""
    try:
        detail: Any = validation_errors(exc) if isinstance(exc, RequestValidationError) else []
    except Exception:  # the answer must not depend on what was sent
        detail = []
    return JSONResponse(status_code=422, content={"detail": detail or "invalid request"})
