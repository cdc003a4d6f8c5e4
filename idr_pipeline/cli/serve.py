"""``idr serve`` and ``idr keys``: run the API and manage its keys.

Keys are created and revoked from the command line (with direct store access) rather than
through the API, so there is no bootstrap problem of needing an admin key to make the first one.
"""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer
import uvicorn
from rich.console import Console
from rich.table import Table

from idr_pipeline.api import create_app
from idr_pipeline.api.auth import create_key, list_keys, revoke_key
from idr_pipeline.settings import get_settings
from idr_pipeline.store import open_store, redact_store_url

keys_app = typer.Typer(help="API keys: create, revoke, list.", no_args_is_help=True)
console = Console()


def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default IDR_API_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default IDR_API_PORT).")] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "warning",
    access_log: Annotated[bool, typer.Option(help="Log every request.")] = False,
) -> None:
    """Run the query and activation API (OpenAPI page at /docs)."""

    settings = get_settings()
    _log_personal_reads()
    # For the whole process, so only here and not in create_app, which tests call many times.
    sys.setswitchinterval(settings.api_switch_interval_ms / 1000)
    bind_host, bind_port = host or settings.api_host, port or settings.api_port
    console.print(
        f"serving {redact_store_url(settings.store_url)} on http://{bind_host}:{bind_port}  (docs: /docs)"
    )
    uvicorn.run(
        create_app(settings, freeze_gc=True),
        host=bind_host,
        port=bind_port,
        log_level=log_level,
        access_log=access_log,
        loop="auto",
        http="auto",
    )


def _log_personal_reads() -> None:
    """The personal-read log (key ids and field names, never values) goes to stderr at INFO,
    whatever uvicorn's own level, unless the deployment configured that logger already."""
    access = logging.getLogger("idr_pipeline.api.access")
    if not access.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
        access.addHandler(handler)
        access.setLevel(logging.INFO)
        access.propagate = False


def _store():

    store = open_store(get_settings().store_url)
    store.ensure_schema()
    return store


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="Who or what the key is for.")],
    scopes: Annotated[
        str, typer.Option(help="Comma-separated: read, pii, export, activate, admin. Give the fewest.")
    ] = "read",
    expires_days: Annotated[
        float | None, typer.Option(help="Days until the key stops working (default: never).")
    ] = None,
) -> None:
    """Create a key and print it once: only its SHA-256 is stored."""

    with _store() as store:
        try:
            key_id, key = create_key(
                store, name, [s.strip() for s in scopes.split(",") if s.strip()], expires_days
            )
        except ValueError as exc:
            console.print(f"[bold red]error:[/] {exc}")
            raise typer.Exit(code=2) from None
    console.print(f"key_id {key_id}; the key is shown only now:")
    typer.echo(key)


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key_id printed by create/list.")]) -> None:
    """Revoke a key: requests with it get 401 from then on."""

    with _store() as store:
        if not revoke_key(store, key_id):
            console.print(f"[bold red]error:[/] no active key {key_id}")
            raise typer.Exit(code=1)
    console.print(f"revoked {key_id}")


@keys_app.command("list")
def keys_list() -> None:
    """Key ids, names, scopes and dates (never the keys)."""

    with _store() as store:
        rows = list_keys(store)
    table = Table("key_id", "name", "scopes", "created_at", "expires_at", "last_used_at", "revoked_at")
    for r in rows:
        table.add_row(
            r["key_id"],
            r["name"] or "",
            ",".join(r["scopes"] or []),
            str(r["created_at"]),
            str(r.get("expires_at") or ""),
            str(r.get("last_used_at") or ""),
            str(r["revoked_at"] or ""),
        )
    console.print(table)


def register(app: typer.Typer) -> None:
    """Attach ``serve`` and ``keys`` to the main ``idr`` app."""
    app.command("serve")(serve)
    app.add_typer(keys_app, name="keys")
