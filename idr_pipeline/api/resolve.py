"""Resolving one incoming profile against the store, the way the batch would.

1. The input is standardized with the pipeline's own normalizers (``standardize_frame``), so
   "Foo.Bar+x@GMail.com" and "+1 (415) 555-2671" look up the same keys the batch wrote.
2. Deterministic: each normalized strong identifier is looked up in the store's identifier
   index; one identity holding it is the answer. A phone counts only when the first names do
   not disagree (a landline is a household's, as in the batch).
3. Probabilistic: candidates come from the batch's blocking rules
   (:data:`idr_pipeline.candidates.deterministic.DEFAULT_RULES`) applied to an in-memory index
   of the golden profiles, from identifiers several identities share, and from the Faiss index
   when it holds vectors; each candidate's golden profile is compared and scored with the
   trained Fellegi-Sunter model, including the household correction the batch applies.

Without a trained model only step 2 runs (``/health`` says so). The blocking index holds 64-bit
hashes of the keys, sorted: eight bytes a key in one array rather than a dict of Python strings.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from idr_pipeline.candidates.deterministic import (
    DEFAULT_RULES,
    GENERATIONAL_SUFFIX,
    KEY_SEPARATOR,
    BlockingRule,
    email_names,
)
from idr_pipeline.scoring.comparisons import Sides, compare_sides_with_tf
from idr_pipeline.scoring.fellegi_sunter import MatchModel, prior_weight
from idr_pipeline.scoring.score import HOUSEHOLD_COLUMN, HOUSEHOLD_COMPARISONS
from idr_pipeline.standardize import email_match_key, normalize_country
from idr_pipeline.standardize.frame import PLAIN_FIELDS, REGIONAL_FIELDS
from idr_pipeline.standardize.nicknames import NICKNAME_GROUPS, canonical_given_name
from idr_pipeline.store import IdentityStore
from idr_pipeline.store.tables import GOLDEN_PROFILES

log = logging.getLogger(__name__)

#: Strong identifiers in the order they are tried; the first that names one identity wins.
STRONG_ORDER = ("email_key", "national_id", "device_id", "source_customer_key", "anonymous_id", "phone")
#: Rules the online index uses: the single-sided batch rules, less the source-customer rule (it
#: needs the other side's source, which a query does not have) and the "dob_*" rules that
#: narrow "dob" for the batch. The batch cannot afford to score every same-birth-date pair at
#: scale; a query's few dozen same-birth-date identities are cheap, and ranked anyway, so the
#: online index keeps "dob" itself.
ONLINE_RULES: tuple[BlockingRule, ...] = tuple(
    r
    for r in DEFAULT_RULES
    if r.partner_key is None and r.name != "source_customer" and not r.name.startswith("dob_")
)
#: Candidates scored per request, those sharing the most blocking keys with the query first: a
#: common surname alone can name thousands, and scoring is what the 50 ms budget pays for.
MAX_CANDIDATES = 50
#: Candidates an ambiguous answer names at most.
MAX_AMBIGUOUS_CANDIDATES = 5
PROFILE_FIELDS = [
    "first_name", "last_name", "email", "email_key", "phone", "street", "city", "state", "postcode",
    "country", "dob", "national_id", "device_id", "anonymous_id",
]  # fmt: skip
_FIRST_FROM_IDENTIFIERS = ("email_key", "device_id", "anonymous_id")


def normalize_input(fields: dict[str, Any], default_region: str) -> dict[str, Any]:
    """The request's fields after the pipeline's own per-field normalizers (rejected -> None).

    The same functions ``standardize_frame`` maps over a batch, called per value: a one-row
    frame would pay the frame machinery's fixed cost, far above the functions themselves (they
    are lru_cached).
    """
    region = (default_region or "US").strip().upper()

    def text(name: str) -> str | None:
        value = fields.get(name)
        return None if value is None else str(value)

    clean: dict[str, Any] = {"record_id": "api-query", "source": (text("source") or "").strip() or "api"}
    clean["country"] = normalize_country(text("country")).value
    row_region = clean["country"] or region
    for name, normalize in PLAIN_FIELDS.items():
        clean[name] = normalize(text(name)).value
    for name, normalize_regional in REGIONAL_FIELDS.items():
        clean[name] = normalize_regional(text(name), row_region).value
    clean["email_key"] = email_match_key(clean["email"]) if clean.get("email") else None
    customer = clean.get("source_customer_id")
    clean["source_customer_key"] = (
        f"{clean['source']}:{customer}" if customer and fields.get("source") else None
    )
    return clean


def query_keys(row: dict[str, Any]) -> list[tuple[str, str]]:
    """(rule, key) of one profile under ONLINE_RULES, computed on scalars.

    The same key definitions as the pandas functions in ``candidates.deterministic``
    (``test_resolve`` checks they agree): pandas' fixed cost per call is too high to pay per
    rule on every query.
    """

    def txt(name: str) -> str | None:
        value = row.get(name)
        value = str(value).strip().lower() if value is not None else ""
        return value or None

    def compact(name: str) -> str | None:
        value = txt(name)
        return (re.sub(r"[\s-]", "", value) or None) if value else None

    first, last, postcode = txt("first_name"), txt("last_name"), compact("postcode")
    surname = re.sub(r"[^a-z]", "", re.sub(GENERATIONAL_SUFFIX, "", last)) or None if last else None
    given = re.sub(r"[^a-z]", "", canonical_given_name(first)) or None if first else None
    dob = txt("dob")
    street = txt("street")
    keys = {
        "email_key": txt("email_key"),
        "phone": txt("phone"),
        "national_id": compact("national_id"),
        "device_id": txt("device_id"),
        "anonymous_id": txt("anonymous_id"),
        "dob": dob if dob and len(dob) >= 10 else None,
        "street": re.sub(r"\s+", " ", street) if street else None,
        "surname_postcode": f"{surname}{KEY_SEPARATOR}{postcode}" if surname and postcode else None,
        "given_name_postcode": f"{given}{KEY_SEPARATOR}{postcode}" if given and postcode else None,
    }
    out = [(rule, key) for rule, key in keys.items() if key]
    if given and surname:
        out.append(("full_name", f"{given}{KEY_SEPARATOR}{surname}"))
    email = txt("email_key") or txt("email")
    local = email.split("@", 1)[0].split("+", 1)[0] if email else None
    if local:
        letters = re.sub(r"[^a-z]", "", first or "")
        vocabulary = (frozenset([letters]) if len(letters) >= 2 else frozenset()) | frozenset(NICKNAME_GROUPS)
        surnames = frozenset([surname]) if surname and len(surname) >= 2 else frozenset()
        for g, last_name in sorted(email_names(local, vocabulary, surnames)):
            canon = re.sub(r"[^a-z]", "", canonical_given_name(g)) or g
            out.append(("full_name", f"{canon}{KEY_SEPARATOR}{last_name}"))
    return out


def profile_frame(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Golden-profile rows as the comparison functions read them (record_id = identity_id).

    Golden profiles keep one e-mail, phone and national id; the match key, device and
    anonymous ids come from the identity's identifier map.
    """
    records = []
    for r in rows:
        identifiers = r.get("identifiers") or {}
        rec = {f: r.get(f) for f in PROFILE_FIELDS}
        rec["record_id"] = r["identity_id"]
        for id_type in _FIRST_FROM_IDENTIFIERS:
            values = identifiers.get(id_type) if isinstance(identifiers, dict) else None
            if values and not rec.get(id_type):
                rec[id_type] = values[0]
        records.append(rec)
    return pd.DataFrame(records, columns=["record_id", *PROFILE_FIELDS], dtype=object)


def _hash_keys(keys: np.ndarray, rule: str) -> np.ndarray:
    """64-bit hashes of rule-qualified keys: two rules' equal keys must not meet."""
    qualified = pd.Series(keys, dtype=object).map(lambda k: f"{rule}\x1f{k}")
    return pd.util.hash_array(qualified.to_numpy(dtype=object), categorize=False).astype(np.int64)


def _rule_keys(rule: BlockingRule, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    key = rule.key(frame)
    pos = np.asarray(key.index, dtype=np.int64) if rule.multi_key else np.arange(len(key), dtype=np.int64)
    has = key.notna().to_numpy()
    return pos[has], key.to_numpy(dtype=object)[has]


@dataclass
class BlockingIndex:
    """Sorted (key hash, identity position) arrays over every online rule."""

    identity_ids: np.ndarray
    hashes: np.ndarray
    positions: np.ndarray
    built_at: float = field(default_factory=time.monotonic)

    @classmethod
    def build(cls, frame: pd.DataFrame) -> BlockingIndex:
        all_hashes, all_pos = [], []
        for rule in ONLINE_RULES:
            pos, keys = _rule_keys(rule, frame)
            if not len(keys):
                continue
            hashes = _hash_keys(keys, rule.name)
            # The batch skips buckets past the rule's cap (placeholders, very common names).
            uniq, inverse, counts = np.unique(hashes, return_inverse=True, return_counts=True)
            keep = counts[inverse] <= rule.max_bucket
            all_hashes.append(hashes[keep])
            all_pos.append(pos[keep])
        hashes = np.concatenate(all_hashes) if all_hashes else np.zeros(0, np.int64)
        positions = np.concatenate(all_pos) if all_pos else np.zeros(0, np.int64)
        order = np.argsort(hashes, kind="stable")
        return cls(
            identity_ids=frame["record_id"].to_numpy(dtype=object),
            hashes=hashes[order],
            positions=positions[order].astype(np.int32),
        )

    def __len__(self) -> int:
        return len(self.identity_ids)

    def candidates(self, query: dict[str, Any]) -> list[str]:
        """Identity ids sharing any blocking key with the normalized ``query`` profile."""
        keys = query_keys(query)
        if not keys:
            return []
        # Every key hashed in one call (hash_array hashes each value on its own, so this equals
        # _hash_keys per rule); one call per key would pay pandas' fixed overhead per key.
        qualified = np.array([f"{rule}\x1f{key}" for rule, key in keys], dtype=object)
        hashed = pd.util.hash_array(qualified, categorize=False).astype(np.int64)
        lo = np.searchsorted(self.hashes, hashed, "left")
        hi = np.searchsorted(self.hashes, hashed, "right")
        found = [self.positions[a:b] for a, b in zip(lo.tolist(), hi.tolist(), strict=True) if b > a]
        if not found:
            return []
        positions, shared = np.unique(np.concatenate(found), return_counts=True)
        # Most shared keys first; ties keep index order, so the answer is deterministic.
        best = positions[np.argsort(-shared, kind="stable")[:MAX_CANDIDATES]]
        return self.identity_ids[best].tolist()


def load_blocking_index(store: IdentityStore, page: int = 20_000) -> BlockingIndex:
    """Every golden profile, read in keyset pages so the store never builds one huge result."""
    frames, after = [], None
    while True:
        rows = store.select_rows(
            "golden_profiles",
            order_by=["identity_id"],
            limit=page,
            after={"identity_id": after} if after is not None else None,
        )
        if not rows:
            break
        frames.append(profile_frame(rows))
        after = rows[-1]["identity_id"]
        if len(rows) < page:
            break
    frame = pd.concat(frames, ignore_index=True) if frames else profile_frame([])
    return BlockingIndex.build(frame)


def golden_fingerprint(store: IdentityStore) -> tuple[Any, ...]:
    """(row count, latest ``updated_at``) of the golden profiles: any upsert that changes a
    profile touches its ``updated_at``, an erasure or prune lowers the count."""
    return tuple(store.query(f"SELECT COUNT(*), MAX(updated_at) FROM {GOLDEN_PROFILES.name}")[0])


class CandidateScorer:
    """The model's log2 Bayes factors as arrays, for one query against a few dozen candidates.

    The same arithmetic as ``fellegi_sunter.score`` followed by ``household_dependency`` (the
    level's ``weight_table`` entry; on a TF level with a known value, log2(m / max(tf(v),
    tf_min)), a value missing from the TF table counting as tf_min; then the household
    correction), without their pandas frames and per-level ``Series.map``: built for millions
    of pairs, their fixed cost per call dominates on a few dozen candidates, and every
    millisecond a /resolve holds the GIL is one the requests behind it queue for.
    ``test_resolve_scoring`` checks it against the batch functions.
    """

    def __init__(self, model: MatchModel) -> None:
        self.model = model
        self.names = [c.name for c in model.comparisons]
        #: Per comparison: weight by level + 1 (index 0 is a missing value, weight 0).
        self.tables = [np.concatenate([[0.0], model.weight_table(name)]) for name in self.names]
        self.household = [self.names.index(c) for c in HOUSEHOLD_COMPARISONS if c in self.names]
        self.prior = prior_weight(model)
        # Plain dicts: a lookup per agreeing value, without Series.get's per-call overhead.
        self._tf: dict[str, dict[Any, float]] = {}

    def _frequencies(self, column: str) -> dict[Any, float]:
        table = self._tf.get(column)
        if table is None:
            series = self.model.tf.get(column)
            table = {} if series is None else series.to_dict()
            self._tf[column] = table
        return table

    def weights(self, gamma: pd.DataFrame, tf_values: pd.DataFrame) -> np.ndarray:
        """(candidates, comparisons + 1): each comparison's weight, then the household correction."""
        n = len(gamma)
        out = np.zeros((n, len(self.names) + 1))
        tf_min = self.model.tf_min
        for j, comparison in enumerate(self.model.comparisons):
            name = comparison.name
            levels = gamma[name].to_numpy(dtype=np.int64)
            weight = self.tables[j][levels + 1]
            if comparison.tf_levels and name in tf_values.columns:
                values = tf_values[name].to_numpy(dtype=object)
                for level, column in comparison.tf_levels.items():
                    hits = np.flatnonzero(levels == level)
                    if not len(hits):
                        continue
                    frequencies = self._frequencies(column)
                    m = self.model.m[name][level]
                    for i in hits:
                        value = values[i]
                        if value is None or value != value:  # None or NaN: the level's own weight
                            continue
                        share = frequencies.get(value)
                        u = tf_min if share is None or share != share else max(float(share), tf_min)
                        weight[i] = np.log2(m / u)
            out[:, j] = weight
        if self.household:
            positive = np.clip(out[:, self.household], 0.0, None)
            out[:, -1] = -(positive.sum(axis=1) - positive.max(axis=1))
        return out


@dataclass
class Resolution:
    identity_id: str | None
    method: str
    probability: float | None
    matched_on: str | None
    explanation: list[dict[str, Any]]
    candidates_scored: int = 0
    normalized: dict[str, Any] = field(default_factory=dict)
    #: the closest candidates (identity_id, probability, weight) when none clearly wins
    ambiguous_candidates: list[dict[str, Any]] = field(default_factory=list)

    @property
    def matched(self) -> bool:
        return self.identity_id is not None

    @property
    def ambiguous(self) -> bool:
        return bool(self.ambiguous_candidates)


def _first_letters(name: Any) -> str:
    return "".join(ch for ch in str(name or "").lower() if ch.isalpha())[:2]


class Resolver:
    """Holds the model and the blocking index; ``resolve`` is safe to call from many threads."""

    def __init__(
        self,
        model: MatchModel | None,
        threshold: float,
        default_region: str,
        neighbors: Callable[[IdentityStore, dict[str, Any]], list[str]] | None = None,
        ambiguity_margin: float = 4.0,
        possible_threshold: float = 0.5,
    ) -> None:
        self.model = model
        self.scorer = CandidateScorer(model) if model is not None else None
        self.threshold = threshold
        #: bits by which the best candidate must beat any other at ``possible_threshold`` or more
        self.ambiguity_margin = ambiguity_margin
        self.possible_threshold = possible_threshold
        self.default_region = default_region
        #: Optional embedding neighbors: (store, normalized fields) -> identity ids.
        self.neighbors = neighbors
        self.blocking: BlockingIndex | None = None
        self._fingerprint: tuple[Any, ...] | None = None
        self._refreshing = threading.Lock()

    # ---------------------------------------------------------------- blocking index

    def refresh(self, store: IdentityStore) -> None:
        if self.model is None:
            return
        started = time.perf_counter()
        # Read before the profiles: a load landing meanwhile makes the next check rebuild.
        fingerprint = golden_fingerprint(store)
        self.blocking = load_blocking_index(store)
        self._fingerprint = fingerprint
        log.info(
            "blocking index: %d identities, %d keys in %.1f s",
            len(self.blocking),
            len(self.blocking.hashes),
            time.perf_counter() - started,
        )

    def refresh_if_stale(
        self, open_store: Callable[[], IdentityStore], max_age: float
    ) -> threading.Thread | None:
        """Rebuild in a background thread when older than ``max_age`` and the golden profiles
        changed since; requests keep the old index meanwhile. Returns the thread, if started.

        The rebuild reads every profile and holds the GIL for seconds on a large store, which
        every request served meanwhile feels; when nothing changed (one aggregate query,
        answered by the store without the GIL) the index is only marked fresh again.
        """
        if self.model is None or self.blocking is None:
            return None
        if time.monotonic() - self.blocking.built_at < max_age or not self._refreshing.acquire(
            blocking=False
        ):
            return None

        def run() -> None:
            store = open_store()
            try:
                if self.blocking is not None and golden_fingerprint(store) == self._fingerprint:
                    self.blocking.built_at = time.monotonic()
                else:
                    self.refresh(store)
            except Exception:  # pragma: no cover - logged, the old index keeps serving
                log.exception("refreshing the blocking index failed")
            finally:
                store.close()
                self._refreshing.release()

        thread = threading.Thread(target=run, name="blocking-refresh", daemon=True)
        thread.start()
        return thread

    # ---------------------------------------------------------------- resolve

    def resolve(self, store: IdentityStore, fields: dict[str, Any]) -> Resolution:
        query = normalize_input(fields, self.default_region)
        shared: list[str] = []
        for id_type in STRONG_ORDER:
            value = query.get(id_type)
            if not value:
                continue
            ids = store.lookup(id_type, value)
            if len(ids) == 1 and (id_type != "phone" or self._same_first_name(store, ids[0], query)):
                return Resolution(
                    identity_id=ids[0],
                    method="deterministic",
                    probability=1.0,
                    matched_on=id_type,
                    explanation=[{"comparison": id_type, "level_label": "exact identifier", "weight": None}],
                    normalized=query,
                )
            shared.extend(ids)
        if self.model is None:
            return Resolution(None, "none", None, None, [], normalized=query)
        return self._probabilistic(store, query, shared)

    def _same_first_name(self, store: IdentityStore, identity_id: str, query: dict[str, Any]) -> bool:
        mine = _first_letters(query.get("first_name"))
        if not mine:
            return True
        rows = store.select_rows("golden_profiles", {"identity_id": identity_id})
        theirs = _first_letters(rows[0]["first_name"]) if rows else ""
        return not theirs or theirs == mine

    def _probabilistic(self, store: IdentityStore, query: dict[str, Any], shared: list[str]) -> Resolution:
        assert self.model is not None and self.scorer is not None
        ids = list(dict.fromkeys(shared))
        if self.blocking is not None:
            ids.extend(self.blocking.candidates(query))
        if self.neighbors is not None:
            ids.extend(self.neighbors(store, query))
        ids = list(dict.fromkeys(ids))[:MAX_CANDIDATES]
        if not ids:
            return Resolution(None, "none", None, None, [], normalized=query)
        rows = store.select_rows("golden_profiles", {"identity_id": ids})
        if not rows:
            return Resolution(None, "none", None, None, [], normalized=query)
        # One frame, the query in row 0 and the candidates after it, compared as position pairs
        # (0, i): each column is factorized once over n + 1 values, where repeating the query
        # n times and concatenating it with the candidates built and factorized 2n.
        frame = profile_frame([{**query, "identity_id": "api-query", "identifiers": {}}, *rows])
        n = len(rows)
        sides = Sides(frame, np.zeros(n, dtype=np.int64), np.arange(1, n + 1, dtype=np.int64))
        gamma, tf = compare_sides_with_tf(sides)
        weights = self.scorer.weights(gamma, tf)
        total = self.scorer.prior + weights.sum(axis=1)
        probability = 1.0 / (1.0 + np.exp2(-np.clip(total, -1000, 1000)))
        order = np.argsort(-total, kind="stable")
        best = int(order[0])
        p = float(probability[best])
        # The best candidate answers only when it clearly beats the runner-up: two John Smiths
        # that fit the query alike are not one answer, whichever scored a hair higher.
        close = [
            int(i)
            for i in order[1:]
            if probability[i] >= self.possible_threshold and total[best] - total[i] < self.ambiguity_margin
        ]
        if p >= self.threshold and close:
            return Resolution(
                identity_id=None,
                method="ambiguous",
                probability=None,
                matched_on=None,
                explanation=[],
                candidates_scored=n,
                normalized=query,
                ambiguous_candidates=[
                    {
                        "identity_id": str(frame["record_id"].iloc[i + 1]),
                        "probability": float(probability[i]),
                        "weight": round(float(total[i]), 4),
                    }
                    for i in [best, *close][:MAX_AMBIGUOUS_CANDIDATES]
                ],
            )
        levels = gamma.iloc[best].to_dict()
        explanation = [
            {
                "comparison": "prior",
                "level_label": f"λ = {self.model.prior:.3g}",
                "weight": self.scorer.prior,
            }
        ]
        for j, comparison in enumerate(self.model.comparisons):
            level = int(levels[comparison.name])
            explanation.append(
                {
                    "comparison": comparison.name,
                    "level_label": "missing" if level < 0 else comparison.levels[level],
                    "weight": round(float(weights[best, j]), 4),
                }
            )
        explanation.append(
            {
                "comparison": HOUSEHOLD_COLUMN,
                "level_label": "shared household evidence counted once",
                "weight": round(float(weights[best, -1]), 4),
            }
        )
        matched = p >= self.threshold
        return Resolution(
            identity_id=str(frame["record_id"].iloc[best + 1]) if matched else None,
            method="probabilistic" if matched else "none",
            probability=p,
            matched_on=None,
            explanation=explanation,
            candidates_scored=n,
            normalized=query,
        )
