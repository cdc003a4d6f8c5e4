"""The tables of the serving store, described once for every backend.

Backends render their DDL and DML from these specs so that a column added here reaches SQLite,
MariaDB/MySQL and SingleStore together instead of drifting apart in three hand-written copies.

Column roles decide what an upsert means:

* ``key`` columns identify the row.
* ``compare`` columns are the content; a row counts as *changed* only when one of them differs.
* ``touch`` columns (``updated_at``, ``linked_at``) are rewritten only when the row changed, so a
  rerun that stamps a new run time onto identical content still changes nothing.
* ``insert_only`` columns (``created_at``, ``merged_at``) keep the value of the first write.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["str", "int", "float", "date", "datetime", "json"]
Role = Literal["key", "compare", "touch", "insert_only"]

ID_TYPE = "VARCHAR(128)"

#: The only status whose identifiers and golden profile are served.
ACTIVE = "active"
IDENTITY_STATUSES = frozenset({ACTIVE, "merged", "retired"})


@dataclass(frozen=True)
class Column:
    name: str
    sql_type: str  # MySQL spelling; SQLite derives its affinity from ``kind``.
    kind: Kind = "str"
    role: Role = "compare"
    nullable: bool = True
    # Filled in when a row omits the column; "now" means the upsert's UTC timestamp.
    default: Any = None
    allowed: frozenset[str] | None = None


@dataclass(frozen=True)
class TableSpec:
    name: str
    columns: tuple[Column, ...]
    # Secondary indexes every backend creates (the primary key is implied by the key columns).
    indexes: tuple[tuple[str, ...], ...] = ()
    # How existing rows are fetched before an upsert: equality on ``probe_eq`` and ``IN (...)`` on
    # ``probe_in`` must be an indexed prefix, so the pre-read costs one index range per chunk.
    probe_eq: tuple[str, ...] = ()
    probe_in: str = ""
    without_rowid: bool = False
    _by_name: dict[str, Column] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._by_name.update({c.name: c for c in self.columns})

    def column(self, name: str) -> Column:
        return self._by_name[name]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def _with_role(self, *roles: Role) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.role in roles)

    @property
    def key(self) -> tuple[str, ...]:
        return self._with_role("key")

    @property
    def compare(self) -> tuple[str, ...]:
        return self._with_role("compare")

    @property
    def updatable(self) -> tuple[str, ...]:
        """Columns an upsert overwrites on an existing row."""
        return self._with_role("compare", "touch")


def _key(name: str, sql_type: str = ID_TYPE) -> Column:
    return Column(name, sql_type, role="key", nullable=False)


def _now(name: str, role: Role) -> Column:
    return Column(name, "DATETIME(6)", kind="datetime", role=role, nullable=False, default="now")


IDENTITIES = TableSpec(
    name="identities",
    columns=(
        _key("identity_id"),
        # active: serves look-ups; merged: folded into ``merged_into``; retired: its records
        # left (split off or deleted upstream) and nothing took its place. Ids are never reused,
        # so inactive rows stay as history while prune_inactive() drops their look-up rows.
        Column(
            "status",
            "VARCHAR(16)",
            nullable=False,
            default="active",
            allowed=IDENTITY_STATUSES,
        ),
        Column("merged_into", ID_TYPE),
        _now("created_at", "insert_only"),
        _now("updated_at", "touch"),
        Column("record_count", "INT", kind="int", nullable=False, default=0),
    ),
    probe_in="identity_id",
)

RECORD_LINKS = TableSpec(
    name="record_links",
    columns=(
        _key("record_id"),
        Column("identity_id", ID_TYPE, nullable=False),
        Column("source", "VARCHAR(64)"),
        _now("linked_at", "touch"),
    ),
    indexes=(("identity_id",),),
    probe_in="record_id",
)

GOLDEN_PROFILES = TableSpec(
    name="golden_profiles",
    columns=(
        _key("identity_id"),
        Column("first_name", "VARCHAR(255)"),
        Column("last_name", "VARCHAR(255)"),
        Column("email", "VARCHAR(320)"),
        Column("phone", "VARCHAR(64)"),
        Column("street", "VARCHAR(512)"),
        Column("city", "VARCHAR(255)"),
        Column("state", "VARCHAR(128)"),
        Column("postcode", "VARCHAR(32)"),
        Column("country", "VARCHAR(64)"),
        Column("dob", "DATE", kind="date"),
        Column("national_id", "VARCHAR(128)"),
        # Every identifier the identity holds, {id_type: [values]}; look-ups use the identifiers table.
        Column("identifiers", "TEXT", kind="json"),
        Column("sources", "TEXT", kind="json"),
        Column("record_count", "INT", kind="int", nullable=False, default=0),
        _now("updated_at", "touch"),
    ),
    probe_in="identity_id",
)

# Every column is key: an identifier either points at an identity or it does not. The primary
# key's leftmost prefix (id_type, id_value) is the look-up index on B-tree backends.
IDENTIFIERS = TableSpec(
    name="identifiers",
    columns=(
        _key("id_type", "VARCHAR(32)"),
        _key("id_value", "VARCHAR(255)"),
        _key("identity_id"),
    ),
    indexes=(("identity_id",),),
    probe_eq=("id_type",),
    probe_in="id_value",
    without_rowid=True,
)

MERGE_HISTORY = TableSpec(
    name="merge_history",
    columns=(
        _key("merged_id"),
        _key("survivor_id"),
        _now("merged_at", "insert_only"),
        Column("reason", "VARCHAR(255)"),
    ),
    indexes=(("survivor_id",),),
    probe_in="merged_id",
)

# The links the matcher kept, with the per-comparison weights behind each: the store answers
# "why are records A and B in one identity" from these rows alone (a path and its weights).
MATCH_LINKS = TableSpec(
    name="match_links",
    columns=(
        _key("record_id_l"),
        _key("record_id_r"),
        Column("identity_id", ID_TYPE, nullable=False),
        Column("probability", "DOUBLE", kind="float", nullable=False, default=0.0),
        Column("weights", "TEXT", kind="json"),
    ),
    indexes=(("identity_id",),),
    probe_in="record_id_l",
)

# ------------------------------------------------------------------ audiences

#: Segment kinds: ``rule`` (the typed DSL in idr_pipeline.segments.dsl), ``prototype``
#: (behavior-embedding similarity to a described prototype) or ``lookalike`` (the identities
#: nearest a seed segment in behavior-vector space, outside it).
SEGMENT_KINDS = frozenset({"rule", "prototype", "lookalike"})

#: The reasons a pair is a possible match (graph.steps.possible_matches): a record left on its
#: own because it fits several people, a merge a guard refused, a score below the threshold.
POSSIBLE_MATCHES = TableSpec(
    name="possible_matches",
    columns=(
        _key("record_id_l"),
        _key("record_id_r"),
        Column("identity_id_l", ID_TYPE, nullable=False),
        Column("identity_id_r", ID_TYPE, nullable=False),
        Column("probability", "DOUBLE", kind="float", nullable=False, default=0.0),
        Column("person_weight", "DOUBLE", kind="float"),
        Column("reason", "VARCHAR(64)", nullable=False),
    ),
    indexes=(("identity_id_l",), ("identity_id_r",)),
    probe_in="record_id_l",
)

#: Identifier values the data shows several people carry: no link is made on them, and the
#: model weighs them as missing. ``conflict`` is the person-level attribute that told two of
#: their carriers apart.
SHARED_IDENTIFIERS = TableSpec(
    name="shared_identifiers",
    columns=(
        _key("id_type", "VARCHAR(32)"),
        _key("id_value", "VARCHAR(255)"),
        Column("records", "INT", kind="int", nullable=False, default=0),
        Column("people", "INT", kind="int"),
        Column("conflict", "VARCHAR(64)"),
        Column("reason", "VARCHAR(64)", nullable=False),
    ),
    probe_in="id_value",
)

DECISIONS = frozenset({"link", "split"})

#: Stewards' decisions on record pairs: forced together or forced apart through every batch
#: re-run and streaming update, applied before the clustering's guards.
MATCH_DECISIONS = TableSpec(
    name="match_decisions",
    columns=(
        _key("record_id_l"),
        _key("record_id_r"),
        Column("decision", "VARCHAR(8)", nullable=False, allowed=DECISIONS),
        Column("reason", "TEXT"),
        Column("decided_by", "VARCHAR(64)"),
        _now("decided_at", "touch"),
    ),
    probe_in="record_id_l",
)

SEGMENTS = TableSpec(
    name="segments",
    columns=(
        _key("segment_id", "VARCHAR(128)"),
        Column("name", "VARCHAR(255)", nullable=False, default=""),
        Column("kind", "VARCHAR(16)", nullable=False, default="rule", allowed=SEGMENT_KINDS),
        Column("description", "TEXT"),
        # The validated definition as JSON: the rule expression, the prototype's or the
        # lookalike's settings (seed, size); ``threshold`` is the cosine bound of either.
        Column("definition", "TEXT", kind="json"),
        Column("threshold", "DOUBLE", kind="float"),
        Column("member_count", "INT", kind="int", nullable=False, default=0),
        _now("updated_at", "touch"),
    ),
    probe_in="segment_id",
)

# Current members. ``assigned_at`` keeps the time the identity (last) joined; ``score`` is the
# prototype similarity (1.0 for rule segments).
SEGMENT_MEMBERS = TableSpec(
    name="segment_members",
    columns=(
        _key("segment_id", "VARCHAR(128)"),
        _key("identity_id"),
        Column("score", "DOUBLE", kind="float", nullable=False, default=1.0),
        _now("assigned_at", "insert_only"),
    ),
    indexes=(("identity_id",),),
    probe_eq=("segment_id",),
    probe_in="identity_id",
)

MEMBERSHIP_CHANGES = frozenset({"joined", "left"})

# Append-only membership history: one row per join or leave.
SEGMENT_MEMBERSHIP_HISTORY = TableSpec(
    name="segment_membership_history",
    columns=(
        _key("segment_id", "VARCHAR(128)"),
        _key("identity_id"),
        Column("changed_at", "DATETIME(6)", kind="datetime", role="key", nullable=False, default="now"),
        Column("change_type", "VARCHAR(8)", nullable=False, default="joined", allowed=MEMBERSHIP_CHANGES),
        Column("score", "DOUBLE", kind="float"),
    ),
    indexes=(("identity_id",),),
    probe_eq=("segment_id",),
    probe_in="identity_id",
)

# ------------------------------------------------------------------ behavior

#: The event types the audience DSL's behavioral leaves count (purchased, clicked, viewed).
AGGREGATED_EVENT_TYPES = frozenset({"purchase", "ad_click", "page_view"})
#: Longest category, campaign or product id kept in event_aggregates: the DSL names at most 128
#: characters, so a longer value can never be asked for and is kept as "" (no value).
AGGREGATE_VALUE_CHARS = 128
#: VARBINARY on the MySQL-protocol servers: their ``utf8mb4_bin`` collation pads with spaces,
#: so ``'luxury '`` would equal ``'luxury'`` (a duplicate key, and a match Spark would not make).
_AGGREGATE_VALUE = f"VARBINARY({4 * AGGREGATE_VALUE_CHARS})"

# Resolved click-stream events per identity, event type and value, by whole 24-hour periods
# before the publishing evaluation's instant (``event_aggregate_runs.as_of``): ``days_ago`` n
# holds the events of (as_of - (n+1) days, as_of - n days], so "within N days" (Spark's
# ``as_of - N days <= ts < as_of``) is exactly ``days_ago < N``. Values are as the Spark rule
# evaluator compares them: category and campaign lower-cased, product id as sent, "" for none;
# campaign only on ad clicks and product id only on purchases, the only leaves that ask.
# The whole table is replaced by each publish, in one transaction.
EVENT_AGGREGATES = TableSpec(
    name="event_aggregates",
    columns=(
        _key("event_type", "VARCHAR(16)"),
        Column("category", _AGGREGATE_VALUE, role="key", nullable=False, default=""),
        Column("days_ago", "SMALLINT", kind="int", role="key", nullable=False),
        _key("identity_id"),
        Column("product_id", _AGGREGATE_VALUE, role="key", nullable=False, default=""),
        Column("campaign", _AGGREGATE_VALUE, role="key", nullable=False, default=""),
        Column("events", "INT", kind="int", nullable=False, default=0),
        # Sum of event prices (none counts 0), as Spark's purchase total.
        Column("amount", "DOUBLE", kind="float", nullable=False, default=0.0),
    ),
    indexes=(("identity_id",),),
    probe_in="identity_id",
)

# One row per publish of event_aggregates, with its row accounting: every event read in the
# window is aggregated or counted as unresolved, of another type, or of an identity the store
# does not hold (erased, or not yet served): events = aggregated + unresolved + other_types +
# unknown_identity.
EVENT_AGGREGATE_RUNS = TableSpec(
    name="event_aggregate_runs",
    columns=(
        Column("as_of", "DATETIME(6)", kind="datetime", role="key", nullable=False),
        Column("window_days", "INT", kind="int", nullable=False, default=0),
        Column("events", "BIGINT", kind="int", nullable=False, default=0),
        Column("aggregated", "BIGINT", kind="int", nullable=False, default=0),
        Column("unresolved", "BIGINT", kind="int", nullable=False, default=0),
        Column("other_types", "BIGINT", kind="int", nullable=False, default=0),
        Column("unknown_identity", "BIGINT", kind="int", nullable=False, default=0),
        Column("aggregate_rows", "BIGINT", kind="int", nullable=False, default=0),
        _now("published_at", "touch"),
    ),
    probe_in="as_of",
)

# ------------------------------------------------------------------ API

# Erasure tombstones: a digest of a normalized identifier value, never the value itself, so
# the tombstone does not re-store what was erased. Pipeline runs drop raw records carrying one.
# ``value_sha256`` holds the digest of ``scheme``: "hmac-sha256" (HMAC under the tombstone key,
# whose fingerprint is ``key_id``; see idr_pipeline.core.tombstones), or NULL for the plain
# SHA-256 of stores written before keyed tombstones, which are checked until rewritten.
TOMBSTONES = TableSpec(
    name="tombstones",
    columns=(
        _key("id_type", "VARCHAR(32)"),
        _key("value_sha256", "CHAR(64)"),
        Column("request_id", "VARCHAR(64)"),
        _now("erased_at", "insert_only"),
        Column("scheme", "VARCHAR(16)"),
        Column("key_id", "VARCHAR(32)"),
    ),
    probe_eq=("id_type",),
    probe_in="value_sha256",
)

#: ``read``: look-ups by what the caller names (an identity id, a profile to resolve, an e-mail
#: for neighbors), audience counts and the segment catalog, with national id and date of
#: birth masked. ``pii``: those fields whole. ``export``: listing identities the server picks
#: (audience pages, segment members). ``activate``: activations and ``register=true``.
#: ``admin``: erasure and detailed health; satisfies every other scope.
API_KEY_SCOPES = frozenset({"read", "pii", "export", "activate", "steward", "admin"})

# API keys are stored as SHA-256 hashes; ``scopes`` is a JSON list drawn from API_KEY_SCOPES.
# A key past ``expires_at`` is refused; ``last_used_at`` is written at most once a minute.
API_KEYS = TableSpec(
    name="api_keys",
    columns=(
        _key("key_id", "VARCHAR(64)"),
        Column("key_sha256", "CHAR(64)", nullable=False, default=""),
        Column("name", "VARCHAR(255)"),
        Column("scopes", "TEXT", kind="json"),
        _now("created_at", "insert_only"),
        Column("revoked_at", "DATETIME(6)", kind="datetime"),
        Column("expires_at", "DATETIME(6)", kind="datetime"),
        Column("last_used_at", "DATETIME(6)", kind="datetime"),
    ),
    indexes=(("key_sha256",),),
    probe_in="key_id",
)

ACTIVATION_STATUSES = frozenset({"pending", "running", "succeeded", "failed"})

ACTIVATIONS = TableSpec(
    name="activations",
    columns=(
        _key("activation_id", "VARCHAR(64)"),
        Column("segment_id", "VARCHAR(128)", nullable=False, default=""),
        Column("destination", "VARCHAR(32)", nullable=False, default=""),
        Column("target", "TEXT"),
        Column("status", "VARCHAR(16)", nullable=False, default="pending", allowed=ACTIVATION_STATUSES),
        Column("counts", "TEXT", kind="json"),
        Column("error", "TEXT"),
        _now("created_at", "insert_only"),
        _now("updated_at", "touch"),
        # The key that started it: only that key (or an admin key) may read it.
        Column("owner_key_id", "VARCHAR(64)"),
    ),
    indexes=(("segment_id",),),
    probe_in="activation_id",
)

ERASURE_ACTIONS = frozenset({"erase", "dry_run", "purge"})

# Append-only trail of erasure requests and lake purges: who asked (key id), what (the id type
# and the HMAC of the value under the tombstone key, never the value), the outcome and the
# counts. Rows are only ever inserted; SQLite and MariaDB/MySQL refuse UPDATE and DELETE on it
# with triggers (see ``APPEND_ONLY``).
ERASURE_AUDIT = TableSpec(
    name="erasure_audit",
    columns=(
        _key("audit_id", "VARCHAR(64)"),
        _now("recorded_at", "insert_only"),
        Column("request_id", "VARCHAR(64)"),
        Column("key_id", "VARCHAR(64)"),
        Column("action", "VARCHAR(16)", nullable=False, default="erase", allowed=ERASURE_ACTIONS),
        Column("outcome", "VARCHAR(32)", nullable=False, default=""),
        Column("id_type", "VARCHAR(32)"),
        Column("value_digest", "CHAR(64)"),
        Column("include_merged", "INT", kind="int", nullable=False, default=0),
        Column("counts", "TEXT", kind="json"),
    ),
    indexes=(("request_id",),),
    probe_in="audit_id",
)

PURGE_STATUSES = frozenset({"pending", "running", "done", "failed"})

# Lake purges the erasures asked for; the purge job (defs/privacy) takes the pending ones. The
# erased identity and record ids are kept only until the purge is done, then cleared.
PURGE_REQUESTS = TableSpec(
    name="purge_requests",
    columns=(
        _key("request_id", "VARCHAR(64)"),
        Column("status", "VARCHAR(16)", nullable=False, default="pending", allowed=PURGE_STATUSES),
        Column("identity_ids", "TEXT", kind="json"),
        Column("record_ids", "TEXT", kind="json"),
        _now("requested_at", "insert_only"),
        Column("finished_at", "DATETIME(6)", kind="datetime"),
        Column("counts", "TEXT", kind="json"),
        Column("error", "TEXT"),
    ),
    indexes=(("status",),),
    probe_in="request_id",
)

# ------------------------------------------------------------------ the identity change feed

#: What happened to an identity: ``created`` (new, from records no published identity held),
#: ``split_from`` (new, from records that left the identities in ``related_identity_ids``),
#: ``merged_into`` (folded into the one identity in ``related_identity_ids``), ``updated``
#: (records joined or left it, or its golden record changed), ``retired`` (every record left and
#: nothing took its place) and ``erased`` (deleted by an erasure request).
CHANGE_KINDS = frozenset({"created", "split_from", "merged_into", "updated", "retired", "erased"})

# One row per change of one identity, the outbox behind the Kafka feed and ``GET /changes``.
# ``event_id`` is a digest of (run id, identity id, kind), so recording the same run's changes
# again changes nothing. ``seq`` is NULL while the publish that found the change has not
# finished loading the store; committing assigns the next numbers in commit order, so a reader
# paging by ``seq`` never skips a row committed later. ``published_at`` is set once the broker
# acknowledged the message.
IDENTITY_CHANGES = TableSpec(
    name="identity_changes",
    columns=(
        _key("event_id", "CHAR(64)"),
        Column("seq", "BIGINT", kind="int", role="insert_only"),
        Column("run_id", "VARCHAR(64)", nullable=False),
        Column("identity_id", ID_TYPE, nullable=False),
        Column("kind", "VARCHAR(16)", nullable=False, allowed=CHANGE_KINDS),
        Column("related_identity_ids", "TEXT", kind="json"),
        Column("record_ids", "TEXT", kind="json"),
        # For ``updated``: the records that joined and left, and whether the golden record changed.
        Column("details", "TEXT", kind="json"),
        _now("recorded_at", "insert_only"),
        Column("published_at", "DATETIME(6)", kind="datetime", role="insert_only"),
    ),
    indexes=(("seq",), ("run_id",)),
    probe_in="event_id",
)

#: Tables whose rows may be inserted but never changed or deleted.
APPEND_ONLY = (ERASURE_AUDIT.name,)

TABLES: dict[str, TableSpec] = {
    t.name: t
    for t in (
        IDENTITIES,
        RECORD_LINKS,
        GOLDEN_PROFILES,
        IDENTIFIERS,
        MERGE_HISTORY,
        MATCH_LINKS,
        POSSIBLE_MATCHES,
        SHARED_IDENTIFIERS,
        MATCH_DECISIONS,
        SEGMENTS,
        SEGMENT_MEMBERS,
        SEGMENT_MEMBERSHIP_HISTORY,
        EVENT_AGGREGATES,
        EVENT_AGGREGATE_RUNS,
        TOMBSTONES,
        API_KEYS,
        ACTIVATIONS,
        ERASURE_AUDIT,
        PURGE_REQUESTS,
        IDENTITY_CHANGES,
    )
}

# ------------------------------------------------------------------ the stream service
# What the long-lived stream service (idr_pipeline.live) keeps beside the serving tables, so
# that every offset it reads is accounted for and a restart neither loses nor repeats work.
# Written in the same transaction as the aggregates and memberships they account for.

# The next offset of each topic partition whose messages are in the store, and the topic id
# (Kafka's UUID of the topic) they were read from: a recreated topic has a new id.
STREAM_OFFSETS = TableSpec(
    name="stream_offsets",
    columns=(
        _key("consumer", "VARCHAR(64)"),
        _key("topic", "VARCHAR(249)"),
        Column("kafka_partition", "INT", kind="int", role="key", nullable=False),
        Column("topic_id", "VARCHAR(64)", nullable=False, default=""),
        Column("next_offset", "BIGINT", kind="int", nullable=False, default=0),
        _now("updated_at", "touch"),
    ),
    probe_eq=("consumer", "topic"),
    probe_in="kafka_partition",
)

# One row per landed offset range ``[first_offset, last_offset]``: where its messages went.
# messages = valid + dead; valid = aggregated + unresolved + held + other_types + duplicates
# + outside_window + unknown_identity for events (profiles count as valid only).
STREAM_RANGES = TableSpec(
    name="stream_ranges",
    columns=(
        _key("consumer", "VARCHAR(64)"),
        _key("topic", "VARCHAR(249)"),
        Column("kafka_partition", "INT", kind="int", role="key", nullable=False),
        Column("first_offset", "BIGINT", kind="int", role="key", nullable=False),
        Column("last_offset", "BIGINT", kind="int", nullable=False, default=0),
        Column("topic_id", "VARCHAR(64)", nullable=False, default=""),
        Column("range_key", "VARCHAR(128)", nullable=False, default=""),
        Column("messages", "INT", kind="int", nullable=False, default=0),
        Column("valid", "INT", kind="int", nullable=False, default=0),
        Column("dead", "INT", kind="int", nullable=False, default=0),
        Column("counts", "TEXT", kind="json"),
        _now("applied_at", "insert_only"),
    ),
    probe_eq=("consumer", "topic"),
    probe_in="kafka_partition",
)

# Offsets that were never read, with why: deleted by retention before they were read, or left
# behind in a topic that was deleted and recreated. ``last_offset`` is NULL when unknown.
STREAM_LOSSES = TableSpec(
    name="stream_losses",
    columns=(
        _key("consumer", "VARCHAR(64)"),
        _key("topic", "VARCHAR(249)"),
        Column("kafka_partition", "INT", kind="int", role="key", nullable=False),
        Column("first_offset", "BIGINT", kind="int", role="key", nullable=False),
        Column("topic_id", "VARCHAR(64)", role="key", nullable=False, default=""),
        Column("last_offset", "BIGINT", kind="int"),
        Column("reason", "TEXT"),
        _now("recorded_at", "insert_only"),
    ),
    probe_eq=("consumer", "topic"),
    probe_in="kafka_partition",
)

# Event aggregates the service holds back: events of a cookie no identity holds yet (until an
# identify event ties the cookie to one), and events dated after the current day (until the
# day starts). ``day`` counts days since 1970-01-01 UTC; the other columns are event_aggregates'.
STREAM_HELD_AGGREGATES = TableSpec(
    name="stream_held_aggregates",
    columns=(
        _key("holder", "VARCHAR(160)"),
        _key("event_type", "VARCHAR(16)"),
        Column("category", _AGGREGATE_VALUE, role="key", nullable=False, default=""),
        Column("day", "INT", kind="int", role="key", nullable=False),
        Column("product_id", _AGGREGATE_VALUE, role="key", nullable=False, default=""),
        Column("campaign", _AGGREGATE_VALUE, role="key", nullable=False, default=""),
        Column("events", "INT", kind="int", nullable=False, default=0),
        Column("amount", "DOUBLE", kind="float", nullable=False, default=0.0),
    ),
    probe_in="holder",
)

# Cookies that identify events tied to an identity; ``identity_id`` NULL once two identities
# claimed the same cookie (it then resolves nobody, as in the batch's identify rung).
STREAM_IDENTIFY_LINKS = TableSpec(
    name="stream_identify_links",
    columns=(
        _key("anonymous_id", "VARCHAR(160)"),
        Column("identity_id", ID_TYPE),
        _now("linked_at", "touch"),
    ),
    probe_in="anonymous_id",
)

# The service's heartbeat and status, and the pause handshake with the batch publish of
# event_aggregates (the batch asks, the service finishes its micro-batch and acknowledges).
STREAM_CONTROL = TableSpec(
    name="stream_control",
    columns=(
        _key("consumer", "VARCHAR(64)"),
        Column("heartbeat_at", "DATETIME(6)", kind="datetime"),
        Column("status", "TEXT", kind="json"),
        Column("pause_requested_at", "DATETIME(6)", kind="datetime"),
        Column("paused_at", "DATETIME(6)", kind="datetime"),
        Column("error", "TEXT"),
    ),
    probe_in="consumer",
)

# Scratch: the identities one micro-batch touched, filled and emptied inside its transaction,
# so the audience SQL reads only their rows (compile_audience's ``scope``).
STREAM_TOUCHED = TableSpec(
    name="stream_touched",
    columns=(_key("identity_id"),),
    probe_in="identity_id",
)

STREAM_TABLES: tuple[TableSpec, ...] = (
    STREAM_OFFSETS,
    STREAM_RANGES,
    STREAM_LOSSES,
    STREAM_HELD_AGGREGATES,
    STREAM_IDENTIFY_LINKS,
    STREAM_CONTROL,
    STREAM_TOUCHED,
)
TABLES.update({t.name: t for t in STREAM_TABLES})
