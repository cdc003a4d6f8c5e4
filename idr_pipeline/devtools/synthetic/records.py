"""Rendering people into source records: who appears where, and how each source sees them.

A record is a person as one source system captured them at one moment: the source decides
which fields exist (only the CRM asks for an SSN, only the app sees a device id), the moment
decides which address was current (movers keep their old address in stale records), and the
system's habits decide the formatting (the CRM writes US dates, the web form ISO ones).

Columns are built whole (one numpy array per canonical field, indexed by the records' person
index) so that rendering 200k records is a handful of vectorized gathers plus the damage
passes, not a Python loop with per-field branching.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from idr_pipeline.devtools.synthetic import damage
from idr_pipeline.devtools.synthetic.people import EPOCH, People
from idr_pipeline.devtools.synthetic.phenomena import DEFAULT_PHENOMENA, TABLET_RECORD_SHARE, Phenomena
from idr_pipeline.devtools.synthetic.pools import Pools, random_public_ips

SOURCES: tuple[str, ...] = ("crm", "pos", "web", "app")
RECORD_ID_PREFIX: dict[str, str] = {"crm": "crm", "pos": "pos", "web": "web", "app": "app"}

# Share of people who have a record in each source. The union is forced to be non-empty, so
# records per person lands a little above the sum (about 1.97, plus 8% second accounts and old versions ~= 2.13).
SOURCE_RATE: dict[str, float] = {"crm": 0.55, "pos": 0.45, "web": 0.5, "app": 0.4}
# Of a source's records: an older version of the same record (same record id, older
# updated_at) is also exported, or the person opened a second account (new record id).
OLD_VERSION_RATE = 0.04
SECOND_ACCOUNT_RATE = 0.04
# Records are stamped up to this long before EPOCH; movers moved 60-1100 days before it, so a
# good share of their records predate the move and carry the old address.
MAX_RECORD_AGE_DAYS = 1500
SUFFIX_JR_RATE = 0.025  # of men
SUFFIX_SR_RATE = 0.01


@dataclass(frozen=True)
class SourceProfile:
    """How one source system captures people: field coverage and formatting habits."""

    present: dict[str, float]  # canonical field -> probability the field is filled
    phone_formats: tuple[float, ...]  # weights over damage.PHONE_FORMATS
    dob_formats: tuple[float, ...]  # weights over damage.DOB_FORMATS
    timestamp_style: str
    landline_rate: float = 0.0  # when the household has a landline, how often it is given
    family_email_rate: float = 0.0
    alt_email_rate: float = 0.15
    home_ip_rate: float = 0.0  # the rest of the IPs are carrier (shared) or random public
    carrier_ip_rate: float = 0.0
    missing_markers: bool = True  # CSV exports write N/A / null for blanks
    initials: bool = False  # some records keep only the first initial (Phenomena.initial_only_rate)


PROFILES: dict[str, SourceProfile] = {
    "crm": SourceProfile(
        present={"source_customer_id": 0.99, "first_name": 0.99, "last_name": 0.99, "email": 0.85,
                 "phone": 0.8, "street": 0.95, "city": 0.95, "state": 0.95, "postcode": 0.93,
                 "country": 0.7, "dob": 0.85, "national_id": 0.6},
        phone_formats=(4, 1, 1, 1, 1, 3, 0.5),
        dob_formats=(1, 6, 1, 1, 1),
        timestamp_style="space",
        landline_rate=0.35,
        family_email_rate=0.3,
    ),
    "pos": SourceProfile(
        present={"source_customer_id": 0.92, "first_name": 0.9, "last_name": 0.92, "email": 0.35,
                 "phone": 0.9, "street": 0.8, "city": 0.8, "state": 0.8, "postcode": 0.85},
        phone_formats=(1, 1, 0.5, 1, 5, 2, 0.5),
        dob_formats=(1, 1, 1, 1, 1),
        timestamp_style="zulu",
        landline_rate=0.4,
        family_email_rate=0.3,
        initials=True,
    ),
    "web": SourceProfile(
        present={"source_customer_id": 0.97, "first_name": 0.8, "last_name": 0.8, "email": 0.98,
                 "phone": 0.4, "postcode": 0.85, "country": 0.5, "dob": 0.6, "ip_address": 0.95,
                 "anonymous_id": 0.97},
        phone_formats=(2, 1, 2, 0.5, 3, 2, 2),
        dob_formats=(6, 2, 1, 0.5, 0.5),
        timestamp_style="millis",
        family_email_rate=0.1,
        home_ip_rate=0.6,
        carrier_ip_rate=0.25,
        missing_markers=False,
    ),
    "app": SourceProfile(
        present={"source_customer_id": 1.0, "first_name": 0.7, "last_name": 0.7, "email": 0.9,
                 "phone": 0.6, "dob": 0.3, "ip_address": 0.9, "device_id": 0.98, "anonymous_id": 0.85},
        phone_formats=(0.5, 0.5, 3, 0.5, 1, 1, 5),
        dob_formats=(5, 0, 0, 3, 0),
        timestamp_style="offset",
        home_ip_rate=0.4,
        carrier_ip_rate=0.45,
        missing_markers=False,
    ),
}  # fmt: skip

# Affine maps i -> (a*i + b) mod m give each account a unique, random-looking customer id.
_ACCOUNT_ID_SPACE: dict[str, tuple[int, int, int]] = {
    "crm": (48271, 1_234_567, 100_000_000),
    "pos": (69621, 987_654_321, 10_000_000_000),
    "web": (40692, 55_555_555, 2**40),
    "app": (16807, 7_777_777, 1_000_000_000),
}


@dataclass
class SourceRows:
    """One source's rows in canonical terms; '' means the field is absent in that row.

    `person_id` is '' for garbage rows that depict nobody. `extras` holds source columns the
    mapping does not name (they end up in the canonical `extras` JSON column).
    """

    source: str
    record_id: np.ndarray
    person_id: np.ndarray
    columns: dict[str, np.ndarray]
    extras: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.record_id)

    def take(self, idx: np.ndarray) -> SourceRows:
        """Rows reordered/subset by index (used for shuffling and duplicating)."""
        return SourceRows(
            self.source,
            self.record_id[idx],
            self.person_id[idx],
            {k: v[idx] for k, v in self.columns.items()},
            {k: v[idx] for k, v in self.extras.items()},
        )

    @staticmethod
    def concat(parts: list[SourceRows]) -> SourceRows:
        first = parts[0]
        return SourceRows(
            first.source,
            np.concatenate([p.record_id for p in parts]),
            np.concatenate([p.person_id for p in parts]),
            {k: np.concatenate([p.columns[k] for p in parts]) for k in first.columns},
            {k: np.concatenate([p.extras[k] for p in parts]) for k in first.extras},
        )


@dataclass
class SourcePlan:
    """Which person each record of one source shows, and in what circumstances.

    Arrays are aligned per row. `record_no` is the numeric part of the record id; an old
    version shares its record's number, a second account has its own.
    """

    source: str
    person: np.ndarray
    account: np.ndarray  # 0 primary account, 1 second account
    record_no: np.ndarray
    seconds_ago: np.ndarray
    old_version: np.ndarray


def plan_records(people: People, rng: np.random.Generator, id_slots: dict[str, int]) -> dict[str, SourcePlan]:
    """Decide, for every source, which records exist; no values are rendered yet.

    `id_slots[source]` is filled with the number of record ids the real records use, so the
    caller can hand further ids to garbage rows without colliding.
    """
    n = len(people)
    member = (
        np.column_stack([rng.random(n) < SOURCE_RATE[s] for s in SOURCES]) if n else np.zeros((0, 4), bool)
    )
    nobody = ~member.any(axis=1)
    member[np.flatnonzero(nobody), rng.integers(0, len(SOURCES), size=int(nobody.sum()))] = True

    plans: dict[str, SourcePlan] = {}
    for j, source in enumerate(SOURCES):
        primary = np.flatnonzero(member[:, j])
        second = primary[rng.random(primary.size) < SECOND_ACCOUNT_RATE]
        person = np.concatenate([primary, second])
        account = np.concatenate([np.zeros(primary.size, np.int64), np.ones(second.size, np.int64)])
        k = person.size
        record_no = rng.permutation(k)
        seconds_ago = rng.integers(0, MAX_RECORD_AGE_DAYS * 86400, size=k)
        old = np.flatnonzero(rng.random(k) < OLD_VERSION_RATE)
        older_by = rng.integers(30 * 86400, 700 * 86400, size=old.size)
        id_slots[source] = k
        plans[source] = SourcePlan(
            source=source,
            person=np.concatenate([person, person[old]]),
            account=np.concatenate([account, account[old]]),
            record_no=np.concatenate([record_no, record_no[old]]),
            seconds_ago=np.concatenate([seconds_ago, seconds_ago[old] + older_by]),
            old_version=np.concatenate([np.zeros(k, bool), np.ones(old.size, bool)]),
        )
    return plans


def generational_suffixes(people: People, rng: np.random.Generator) -> np.ndarray:
    """A small share of men are 'Jr' or 'Sr'; part of the identity, so fixed per person.

    A son named after the father he lives with is 'Jr' and that father 'Sr'; other men carry a
    suffix at random (their namesake lives elsewhere, or not in the data).
    """
    n = len(people)
    u = rng.random(n)
    male = ~people.female
    out = np.full(n, "", dtype=object)
    out[male & (u < SUFFIX_JR_RATE)] = "Jr"
    out[male & (u >= SUFFIX_JR_RATE) & (u < SUFFIX_JR_RATE + SUFFIX_SR_RATE)] = "Sr"
    junior = people.junior_of >= 0
    out[people.junior_of[junior]] = "Sr"
    out[junior] = "Jr"
    return out


def record_id(source: str, number: np.ndarray, width: int) -> np.ndarray:
    """'crm-000123': globally unique because the prefix names the source."""
    prefix = RECORD_ID_PREFIX[source]
    return np.array([f"{prefix}-{k:0{width}d}" for k in number], dtype=object)


def account_ids(source: str, person: np.ndarray, account: np.ndarray) -> np.ndarray:
    """The source's own customer number, unique per (person, account)."""
    a, b, m = _ACCOUNT_ID_SPACE[source]
    i = person.astype(np.int64) * 2 + account.astype(np.int64)
    x = (i * a + b) % m  # a is coprime to m, so distinct i < m give distinct x
    if source == "crm":
        return np.array([f"C{v:08d}" for v in x], dtype=object)
    if source == "pos":
        return np.array([f"603571{v:010d}" for v in x], dtype=object)
    if source == "web":
        return np.array([f"acct_{v:010x}" for v in x], dtype=object)
    return np.array([str(v + 1_000_000_000) for v in x], dtype=object)


def _choose(base: np.ndarray, alt: np.ndarray, use_alt: np.ndarray) -> np.ndarray:
    """Element-wise alt where use_alt and alt is present, else base."""
    return np.where(use_alt & (alt != ""), alt, base).astype(object)


def render_source(
    plan: SourcePlan,
    people: People,
    pools: Pools,
    suffix: np.ndarray,
    rng: np.random.Generator,
    id_width: int,
    phenomena: Phenomena = DEFAULT_PHENOMENA,
) -> SourceRows:
    """Render one source's planned records into damaged canonical columns.

    The `phenomena` draw from a generator spawned from `rng`, so the base rendering is the
    same whatever their rates.
    """
    source, prof = plan.source, PROFILES[plan.source]
    p = plan.person
    k = p.size
    second = plan.account == 1
    cols: dict[str, np.ndarray] = {}
    hard = rng.spawn(1)[0]
    on_tablet = (people.family_device[p] != "") & (hard.random(k) < TABLET_RECORD_SHARE)
    initial_only = prof.initials & (hard.random(k) < phenomena.initial_only_rate)
    initial_dot = hard.random(k) < 0.5

    # Address current at the record's moment: movers' records older than the move show the
    # previous address (the same for every member of the household).
    moved_ago = people.moved_days_ago[p]
    stale = (moved_ago > 0) & (plan.seconds_ago > moved_ago.astype(np.int64) * 86400)
    street = np.where(stale, people.old_street[p], people.street[p]).astype(object)
    city = np.where(stale, people.old_city[p], people.city[p]).astype(object)
    state = np.where(stale, people.old_state[p], people.state[p]).astype(object)
    zip5 = np.where(stale, people.old_zip[p], people.zip[p]).astype(object)

    email = _choose(people.email[p], people.alt_email[p], (rng.random(k) < prof.alt_email_rate) | second)
    email = _choose(email, people.family_email[p], rng.random(k) < prof.family_email_rate)
    phone = _choose(people.mobile[p], people.landline[p], rng.random(k) < prof.landline_rate)

    cols["source_customer_id"] = account_ids(source, p, plan.account)
    cols["first_name"] = damage.first_names(people.first[p], people.female[p], rng)
    cols["first_name"] = damage.first_initials(cols["first_name"], people.first[p], initial_only, initial_dot)
    cols["last_name"] = damage.last_names(people.last[p], suffix[p], rng)
    cols["email"] = damage.emails(email, rng)
    cols["phone"] = damage.phones(phone, rng, prof.phone_formats)
    if "street" in prof.present:
        cols["street"] = damage.streets(street, rng)
        cols["city"] = damage.case_noise(city, rng, 0.1)
        cols["state"] = damage.states(state, pools.state_names, rng)
    if "postcode" in prof.present:
        cols["postcode"] = damage.zips(zip5, people.zip4[p], rng)
    if "country" in prof.present:
        cols["country"] = damage.countries(k, rng, 1.0)
    if "dob" in prof.present:
        cols["dob"] = damage.format_dobs(people.dob[p], rng, prof.dob_formats)
        cols["dob"][people.dob_withheld[p]] = ""
    if "national_id" in prof.present:
        ssn = people.ssn[p]
        dashed = rng.random(k) < 0.6
        cols["national_id"] = np.array(
            [f"{s[:3]}-{s[3:5]}-{s[5:]}" if d else s for s, d in zip(ssn, dashed, strict=True)], dtype=object
        )
    if "ip_address" in prof.present:
        u = rng.random(k)
        carrier = rng.choice(pools.carrier_ips, size=k)
        random_ip = random_public_ips(rng, k)
        cols["ip_address"] = np.where(
            u < prof.home_ip_rate,
            people.home_ip[p],
            np.where(u < prof.home_ip_rate + prof.carrier_ip_rate, carrier, random_ip),
        ).astype(object)
    if "device_id" in prof.present:
        cols["device_id"] = _choose(people.device[p], people.device2[p], second | (rng.random(k) < 0.3))
        # The family tablet is used at home: its records carry the household's IP.
        cols["device_id"] = np.where(on_tablet, people.family_device[p], cols["device_id"]).astype(object)
        if "ip_address" in cols:
            cols["ip_address"] = np.where(on_tablet, people.home_ip[p], cols["ip_address"]).astype(object)
    if "anonymous_id" in prof.present:
        cols["anonymous_id"] = _choose(people.anon[p], people.anon2[p], rng.random(k) < 0.3)

    for name, rate in prof.present.items():
        cols[name] = damage.blank_out(cols[name], rng, rate, prof.missing_markers)
    cols["updated_at"] = damage.timestamps(plan.seconds_ago, EPOCH, prof.timestamp_style)

    return SourceRows(
        source=source,
        record_id=record_id(source, plan.record_no, id_width),
        person_id=people.person_id[p].astype(object),
        columns=cols,
        extras=_extras(source, plan, people, rng),
    )


def _extras(source: str, plan: SourcePlan, people: People, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One unmapped column per source, so the `extras` passthrough is exercised."""
    k = plan.person.size
    if source == "crm":
        return {"Segment": rng.choice(np.array(["Gold", "Silver", "Bronze", ""], dtype=object), size=k)}
    if source == "pos":
        return {"store_id": np.array([f"S{v:03d}" for v in rng.integers(1, 250, size=k)], dtype=object)}
    if source == "web":
        utm = np.array(["google", "facebook", "newsletter", "direct", "instagram", ""], dtype=object)
        return {"utm_source": rng.choice(utm, size=k)}
    return {"platform": np.where(people.ios[plan.person], "ios", "android").astype(object)}
