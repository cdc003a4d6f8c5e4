"""The blocking index is rebuilt only when the golden profiles changed (SQLite and MariaDB)."""

from __future__ import annotations

from collections.abc import Callable

from idr_pipeline.api.resolve import Resolver
from idr_pipeline.store import IdentityStore
from idr_pipeline_tests.api.conftest import hand_set_model, seed


class _Borrowed:
    """The test's store handed to the refresh thread, which closes what it is given."""

    def __init__(self, store: IdentityStore) -> None:
        self.store = store

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)

    def close(self) -> None:
        pass


def _opener(store: IdentityStore) -> Callable[[], IdentityStore]:
    return lambda: _Borrowed(store)  # type: ignore[return-value]


def test_refresh_rebuilds_only_after_the_profiles_change(store: IdentityStore) -> None:
    seed(store)
    resolver = Resolver(hand_set_model(), 0.9, "US")
    resolver.refresh(store)
    first = resolver.blocking
    assert first is not None and len(first) == 40

    # Stale but unchanged: marked fresh, not rebuilt.
    stamped = first.built_at
    thread = resolver.refresh_if_stale(_opener(store), max_age=0)
    assert thread is not None
    thread.join(10)
    assert resolver.blocking is first and first.built_at > stamped
    # Fresh: no thread at all.
    assert resolver.refresh_if_stale(_opener(store), max_age=3600) is None

    # A new profile: rebuilt, and the new identity is a candidate.
    store.upsert_golden_profiles(
        [
            {
                "identity_id": "id-new",
                "first_name": "Zed",
                "last_name": "Quill",
                "postcode": "99501",
                "record_count": 1,
            }
        ]
    )
    thread = resolver.refresh_if_stale(_opener(store), max_age=0)
    assert thread is not None
    thread.join(10)
    assert resolver.blocking is not first and len(resolver.blocking) == 41
    assert "id-new" in resolver.blocking.candidates(
        {"first_name": "zed", "last_name": "quill", "postcode": "99501"}
    )

    # A deletion (erasure) changes the count: rebuilt again.
    second = resolver.blocking
    store.erase_identities(["id-new"])
    thread = resolver.refresh_if_stale(_opener(store), max_age=0)
    assert thread is not None
    thread.join(10)
    assert resolver.blocking is not second and len(resolver.blocking) == 40
