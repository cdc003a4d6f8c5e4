"""A realistic click stream of the generated people, for the ``idr.events`` and ``idr.profiles`` topics.

The people are rebuilt from the same ``seed`` and ``people`` that ``idr generate`` used (the
same seeded draws in the same order), so every ``user_id`` is a web account id that the web
source file holds and every e-mail is one of the people's addresses: stitching events to
resolved identities can then be scored against the truth. Rebuilding is exact and cheap (about
a second for 10k people), whereas reading the landing folder back would only see the damaged
rendering of each person.

What the stream contains, and why:

* sessions of page views, ad clicks with campaigns and purchases, on one of a person's
  devices (``anon`` or, for a quarter of people, a second device ``anon2``);
* visitors who browse anonymously and identify later (an ``identify`` event links the device's
  ``anonymous_id`` to the account id and/or an e-mail), after which their events carry the
  ``user_id`` too;
* a luxury-buyer population (~3%) that buys often, in category ``luxury``, at high prices;
* strangers: anonymous devices that belong to nobody in the data set and never identify;
* real-time sign-ups (a new web account: a canonical profile on ``idr.profiles`` plus an
  identify event) and profile updates of existing web accounts (same record id);
* ~1% malformed messages of four kinds: not JSON, a required field missing, a bad type, a
  timestamp years in the future. They are extra messages, counted by kind.

Same seed, people, days and ``until``: same messages, byte for byte.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from idr_pipeline.devtools.synthetic import garbage
from idr_pipeline.devtools.synthetic.people import People, make_people, uuids
from idr_pipeline.devtools.synthetic.pools import build_pools
from idr_pipeline.devtools.synthetic.records import SOURCES, account_ids, plan_records, record_id
from idr_pipeline.stream.producer import Message

LUXURY_RATE = 0.03
MALFORMED_RATE = 0.01
MALFORMED_KINDS: tuple[str, ...] = ("not_json", "missing_field", "bad_type", "future_ts")
CATEGORIES = np.array(["apparel", "electronics", "home", "beauty", "books", "sports", "toys"], dtype=object)
CAMPAIGNS = np.array(
    ["spring_sale", "retarget_cart", "brand_search", "newsletter_q2", "influencer_x", "black_friday"],
    dtype=object,
)
PAGES = np.array(
    ["/", "/search", "/category", "/product", "/cart", "/account", "/blog", "/help"], dtype=object
)
SITE = "https://shop.example.com"


@dataclass
class EventStream:
    """The generated messages in publish order, with counts that add up to them."""

    events: list[Message]
    profiles: list[Message]
    counts: Counter = field(default_factory=Counter)

    def summary(self) -> dict[str, int]:
        return dict(sorted(self.counts.items()))


def _iso(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _dumps(obj: dict) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def default_until() -> datetime:
    """Midnight UTC today: the stream covers the days before it, and one day's runs agree."""
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


@dataclass
class _World:
    people: People
    user_id: np.ndarray  # web account id, '' for people without a web account
    web_record_id: np.ndarray  # record id of the account's web record, '' if none
    new_account_id: np.ndarray  # the id a sign-up gets (unused by the web file)


def _world(n: int, seed: int) -> _World:
    """Rebuild the people and their web accounts exactly as ``generate_dataset`` draws them."""
    folks = make_people(n, build_pools(seed), np.random.default_rng([seed, 10]))
    slots: dict[str, int] = {}
    plans = plan_records(folks, np.random.default_rng([seed, 20]), slots)
    extra = {s: int(np.ceil(slots[s] * garbage.VALUE_GARBAGE_RATE)) for s in SOURCES}
    width = max(6, len(str(max([slots[s] + extra[s] for s in SOURCES], default=0))))
    web = plans["web"]
    primary = (web.account == 0) & ~web.old_version
    user_id = np.full(n, "", dtype=object)
    rec_id = np.full(n, "", dtype=object)
    persons = web.person[primary]
    user_id[persons] = account_ids("web", persons, web.account[primary])
    rec_id[persons] = record_id("web", web.record_no[primary], width)
    # account_ids maps (person, account) one-to-one; account 0 of a person without a web record
    # is an id the file never uses, so a sign-up can take it without colliding.
    everyone = np.arange(n)
    new_ids = account_ids("web", everyone, np.zeros(n, np.int64)) if n else np.zeros(0, dtype=object)
    return _World(folks, user_id, rec_id, new_ids)


def generate_event_stream(
    people: int, days: int, seed: int = 42, until: datetime | None = None
) -> EventStream:
    """Simulate ``days`` days of traffic of ``people`` generated people, ending at ``until``."""
    if people < 1 or days < 1:
        raise ValueError("people and days must be positive")
    until = (until or default_until()).astimezone(UTC)
    world = _world(people, seed)
    folks = world.people
    rng = np.random.default_rng([seed, 50])
    n = people
    luxury = rng.random(n) < LUXURY_RATE
    activity = rng.beta(1.2, 8.0, size=n)  # daily chance of a visit, mean ~0.13
    has_account = world.user_id != ""
    user_id = world.user_id.copy()
    known: set[tuple[int, str]] = set()  # (person, device) pairs that have identified
    tag = f"{seed}-{until:%Y%m%d%H}"
    timed: list[tuple[datetime, int, str | None, bytes]] = []
    profiles: list[tuple[datetime, int, str, bytes]] = []
    counts: Counter = Counter()
    seq = 0

    def emit(ts: datetime, key: str | None, obj: dict) -> None:
        nonlocal seq
        timed.append((ts, seq, key, _dumps(obj)))
        seq += 1

    def event(kind: str, ts: datetime, anon: str, uid: str, props: dict, email: str = "") -> None:
        obj: dict = {"event_id": f"e{tag}-{seq:09d}", "type": kind, "ts": _iso(ts), "anonymous_id": anon}
        if uid:
            obj["user_id"] = uid
        if email:
            obj["email"] = email
        if props:
            obj["properties"] = props
        emit(ts, anon, obj)
        counts[f"event:{kind}"] += 1

    def profile(ts: datetime, p: int, rid: str, uid: str, anon: str, kind: str) -> None:
        rec = {
            "record_id": rid,
            "source": "web",
            "source_customer_id": uid,
            "first_name": str(folks.first[p]),
            "last_name": str(folks.last[p]),
            "email": str(folks.email[p]),
            "phone": str(folks.mobile[p]) or None,
            "street": str(folks.street[p]),
            "city": str(folks.city[p]),
            "state": str(folks.state[p]),
            "postcode": str(folks.zip[p]),
            "country": "US",
            "device_id": str(folks.device[p]),
            "anonymous_id": anon,
            "updated_at": _iso(ts),
        }
        profiles.append((ts, len(profiles), f"web:{rid}", _dumps({k: v for k, v in rec.items() if v})))
        counts[f"profile:{kind}"] += 1

    for day in range(days):
        day_start = until - timedelta(days=days - day)
        visitors = np.flatnonzero(rng.random(n) < activity)
        sessions = 1 + rng.poisson(0.3, size=visitors.size)
        for p, k in zip(visitors.tolist(), sessions.tolist(), strict=True):
            for _ in range(k):
                second = bool(folks.anon2[p]) and rng.random() < 0.4
                anon = str(folks.anon2[p] if second else folks.anon[p])
                t = day_start + timedelta(seconds=float(rng.uniform(0, 86_400 - 3_600)))
                _session(rng, p, anon, t, bool(luxury[p]), event, counts)
                identified = (p, anon) in known
                if not identified:
                    t_id = t + timedelta(seconds=float(rng.uniform(30, 600)))
                    u = rng.random()
                    if has_account[p] and u < 0.3:
                        email = str(folks.email[p]) if rng.random() < 0.5 else ""
                        event("identify", t_id, anon, str(user_id[p]), {}, email)
                        known.add((p, anon))
                    elif not has_account[p] and u < 0.03:
                        # Sign-up: a new web account, its profile on idr.profiles, then identify.
                        user_id[p] = world.new_account_id[p]
                        has_account[p] = True
                        profile(t_id, p, f"web-live-{p:08d}", str(user_id[p]), anon, "signup")
                        event("identify", t_id, anon, str(user_id[p]), {}, str(folks.email[p]))
                        known.add((p, anon))
                    elif not has_account[p] and u < 0.10:
                        event("identify", t_id, anon, "", {}, str(folks.email[p]))  # newsletter form
                        known.add((p, anon))
                identified = (p, anon) in known
                if identified and user_id[p]:
                    # Signed in: the rest of the session carries the account id.
                    t2 = t + timedelta(seconds=float(rng.uniform(600, 1_800)))
                    _session(rng, p, anon, t2, bool(luxury[p]), event, counts, uid=str(user_id[p]))
        # Strangers: devices nobody in the data set owns.
        strangers = uuids(rng, max(1, visitors.size // 20))
        for anon in strangers.tolist():
            t = day_start + timedelta(seconds=float(rng.uniform(0, 86_400 - 3_600)))
            _session(rng, -1, anon, t, False, event, counts)
        # Profile updates of existing web accounts (same record id, new updated_at).
        for p in np.flatnonzero((world.web_record_id != "") & (rng.random(n) < 0.002)).tolist():
            t = day_start + timedelta(seconds=float(rng.uniform(0, 86_400)))
            profile(t, p, str(world.web_record_id[p]), str(world.user_id[p]), str(folks.anon[p]), "update")
    counts["luxury_buyers"] = int(luxury.sum())

    timed.sort(key=lambda x: (x[0], x[1]))
    events = [Message(key, value) for _, _, key, value in timed]
    profiles.sort(key=lambda x: (x[0], x[1]))
    profile_msgs = [Message(key, value) for _, _, key, value in profiles]
    events = _with_malformed(events, rng, until, counts, "event")
    profile_msgs = _with_malformed(profile_msgs, rng, until, counts, "profile")
    counts["events_total"] = len(events)
    counts["profiles_total"] = len(profile_msgs)
    return EventStream(events, profile_msgs, counts)


def _session(rng, p, anon, t, luxury, event, counts, uid: str = "") -> None:  # noqa: ANN001
    """One visit: maybe arriving from an ad, a few page views, maybe a purchase."""
    if rng.random() < 0.2:
        campaign = str(rng.choice(CAMPAIGNS))
        event("ad_click", t, anon, uid, {"campaign": campaign, "url": f"{SITE}/?utm_campaign={campaign}"})
    views = 1 + int(rng.geometric(0.35))
    for _ in range(views):
        t = t + timedelta(seconds=float(rng.exponential(45)))
        page = str(rng.choice(PAGES))
        event("page_view", t, anon, uid, {"url": f"{SITE}{page}"})
    if rng.random() < (0.15 if luxury else 0.05):
        t = t + timedelta(seconds=float(rng.exponential(60)))
        if luxury and rng.random() < 0.8:
            category, price = "luxury", float(np.round(rng.lognormal(7.3, 0.5), 2))  # ~1,500 USD
        else:
            category, price = str(rng.choice(CATEGORIES)), float(np.round(rng.lognormal(3.5, 0.7), 2))
        product = f"sku-{category[:3]}-{int(rng.integers(0, 5000)):05d}"
        props = {"product_id": product, "category": category, "price": price, "currency": "USD"}
        event("purchase", t, anon, uid, {**props, "url": f"{SITE}/product/{product}"})
        if luxury and category == "luxury":
            counts["luxury_purchases"] += 1


def _with_malformed(
    msgs: list[Message], rng: np.random.Generator, until: datetime, counts: Counter, what: str
) -> list[Message]:
    """Insert ~1% broken copies of real messages, spread through the stream."""
    if not msgs:
        return msgs
    k = max(1, int(round(len(msgs) * MALFORMED_RATE)))
    picks = np.sort(rng.choice(len(msgs), size=k, replace=len(msgs) < k))
    kinds = rng.choice(len(MALFORMED_KINDS), size=k)
    broken: dict[int, list[Message]] = {}
    for pos, kind_idx in zip(picks.tolist(), kinds.tolist(), strict=True):
        kind = MALFORMED_KINDS[kind_idx]
        broken.setdefault(pos, []).append(_break(msgs[pos], kind, until, what))
        counts[f"malformed:{what}:{kind}"] += 1
    out: list[Message] = []
    for i, msg in enumerate(msgs):
        out.append(msg)
        out.extend(broken.get(i, ()))
    return out


def _break(msg: Message, kind: str, until: datetime, what: str) -> Message:
    obj = json.loads(msg.value)
    if kind == "not_json":
        return Message(msg.key, msg.value[: max(1, len(msg.value) // 2)])
    if kind == "missing_field":
        obj.pop("event_id" if what == "event" else "record_id", None)
    elif kind == "bad_type":
        if what == "event":
            obj["ts"] = "yesterday"
        else:
            obj["phone"] = 5550100
    else:  # future_ts: a producer clock years ahead
        far = _iso(until + timedelta(days=3650))
        obj["ts" if what == "event" else "updated_at"] = far
    return Message(msg.key, _dumps(obj))


def write_jsonl(
    stream: EventStream, out_dir: Path, events_topic: str, profiles_topic: str
) -> dict[str, Path]:
    """One file per topic, one message value per line (malformed lines included, as sent)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for topic, msgs in ((events_topic, stream.events), (profiles_topic, stream.profiles)):
        path = out_dir / f"{topic}.jsonl"
        with open(path, "wb") as fh:
            for m in msgs:
                fh.write(m.value.replace(b"\n", b" ") + b"\n")
        paths[topic] = path
    return paths
