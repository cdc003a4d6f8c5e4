"""The ground truth: people, their households and their true attribute values.

Every source record is a (damaged) view of one of these people, so identity questions can be
answered exactly: two records are the same person iff they were rendered from the same row here.
Households are generated first because shared addresses, IPs, landlines and family emails are the
hardest false-merge traps for a resolver, and they only look real if family members are built
together (same last name, different first names and birthdays, except a son named after his
father). The hard cases of ``phenomena.py`` (a Jr and Sr at one address, a family tablet, people
who never give a date of birth) are drawn here too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from idr_pipeline.devtools.synthetic.phenomena import DEFAULT_PHENOMENA, Phenomena
from idr_pipeline.devtools.synthetic.pools import Pools, random_public_ips
from idr_pipeline.standardize.email import email_match_key

# The moment every generated timestamp is measured back from; a fixed constant, never the
# wall clock, so that the same seed always gives the same files.
EPOCH = np.datetime64("2025-01-01T00:00:00", "s")

# Household size distribution among *customers*: both partners being customers of one brand is
# much rarer than living together, so most customers appear alone.
_HOUSEHOLD_SIZES = np.array([1, 2, 3, 4, 5])
_HOUSEHOLD_SIZE_P = np.array([0.80, 0.13, 0.045, 0.02, 0.005])
_MOVED_HOUSEHOLD_RATE = 0.15
_UNIT_RATE = 0.2
_DIRECTIONS = np.array(["North", "South", "East", "West"], dtype=object)
_HANDLE_WORDS = (
    "sunny", "tiger", "blue", "rocky", "happy", "star", "lucky", "cool", "music", "soccer", "angel",
    "dragon", "shadow", "ninja", "pixel", "river", "eagle", "coffee", "beach", "golf",
)  # fmt: skip


@dataclass
class People:
    """Column arrays, one element per person; empty string means "this person has none"."""

    person_id: np.ndarray
    household: np.ndarray  # household index
    household_size: np.ndarray
    female: np.ndarray
    first: np.ndarray
    last: np.ndarray
    dob: np.ndarray  # datetime64[D]
    email: np.ndarray
    alt_email: np.ndarray
    family_email: np.ndarray
    mobile: np.ndarray  # 10 digits
    landline: np.ndarray  # 10 digits, shared by the household
    ssn: np.ndarray  # 9 digits
    street: np.ndarray  # canonical long form: "1234 North Maple Street Apt 5"
    city: np.ndarray
    state: np.ndarray  # two-letter code
    zip: np.ndarray  # 5 digits
    zip4: np.ndarray
    old_street: np.ndarray  # previous address of households that moved
    old_city: np.ndarray
    old_state: np.ndarray
    old_zip: np.ndarray
    moved_days_ago: np.ndarray  # 0 for households that never moved
    home_ip: np.ndarray
    ios: np.ndarray
    device: np.ndarray
    device2: np.ndarray
    anon: np.ndarray
    anon2: np.ndarray
    junior_of: np.ndarray  # index of the father a son is named after (Jr), -1 for everyone else
    family_device: np.ndarray  # the household's shared tablet, '' when it has none
    dob_withheld: np.ndarray  # bool: gives no source a date of birth

    def __len__(self) -> int:
        return len(self.person_id)

    @property
    def multi_person_households(self) -> int:
        sizes = np.bincount(self.household) if len(self) else np.zeros(0, dtype=np.int64)
        return int((sizes >= 2).sum())


def uuids(rng: np.random.Generator, n: int, upper: np.ndarray | None = None) -> np.ndarray:
    """Random version-4 UUID strings (iOS reports them upper-case, Android lower-case)."""
    raw = np.frombuffer(rng.bytes(16 * n), dtype=np.uint8).reshape(n, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    out = np.empty(n, dtype=object)
    for i, row in enumerate(raw):
        h = row.tobytes().hex()
        s = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
        out[i] = s.upper() if upper is not None and upper[i] else s
    return out


def _unique(values: np.ndarray, seen: set[str], rng: np.random.Generator, bump, key=None) -> None:
    """Make values unique (in place) against each other and `seen`, compared by `key`.

    A personal email, mobile or SSN that two people share would make the truth wrong, so
    collisions from the random draws are re-drawn rather than tolerated. E-mails compare by
    their mailbox key: j.smith@gmail.com and jsmith@gmail.com are one inbox, so two people
    cannot own them.
    """
    for i, value in enumerate(values):
        if not value:
            continue
        while (key(value) if key else value) in seen:
            value = bump(value, rng)
        seen.add(key(value) if key else value)
        values[i] = value


def _bump_email(email: str, rng: np.random.Generator) -> str:
    local, _, domain = email.partition("@")
    return f"{local}{int(rng.integers(1, 1000))}@{domain}"


def _phone_numbers(pools: Pools, rng: np.random.Generator, n: int) -> np.ndarray:
    area = rng.choice(pools.area_codes, size=n)
    exchange = rng.integers(200, 1000, size=n)
    # N11 exchanges are service codes and 555 is the fictional exchange; both fail validation.
    bad = (exchange % 100 == 11) | (exchange == 555)
    exchange[bad] = exchange[bad] + 1
    line = rng.integers(0, 10000, size=n)
    return np.array(
        [f"{a}{e:03d}{s:04d}" for a, e, s in zip(area, exchange, line, strict=True)], dtype=object
    )


def _bump_phone(pools: Pools):
    def bump(phone: str, rng: np.random.Generator) -> str:
        return _phone_numbers(pools, rng, 1)[0]

    return bump


def _bump_ssn(ssn: str, rng: np.random.Generator) -> str:
    return _ssns(rng, 1)[0]


def _ssns(rng: np.random.Generator, n: int) -> np.ndarray:
    """SSN-shaped: area 001-899 except 666, group 01-99, serial 0001-9999."""
    area = rng.integers(1, 900, size=n)
    area[area == 666] = 665
    group = rng.integers(1, 100, size=n)
    serial = rng.integers(1, 10000, size=n)
    return np.array(
        [f"{a:03d}{g:02d}{s:04d}" for a, g, s in zip(area, group, serial, strict=True)], dtype=object
    )


def _addresses(pools: Pools, rng: np.random.Generator, n: int) -> tuple[np.ndarray, ...]:
    """Street, city, state and zip for n households."""
    number = np.clip(np.exp(rng.normal(6.0, 1.3, size=n)).astype(np.int64), 1, 19999)
    base = rng.choice(pools.street_bases, size=n, p=pools.street_bases_p)
    suffix = rng.choice(pools.street_suffixes, size=n, p=pools.street_suffixes_p)
    direction = np.where(rng.random(n) < 0.12, rng.choice(_DIRECTIONS, size=n), "")
    unit = np.where(rng.random(n) < _UNIT_RATE, rng.integers(1, 40, size=n), 0)
    letter = rng.choice(np.array(["", "", "", "A", "B", "C"], dtype=object), size=n)
    street = np.empty(n, dtype=object)
    for i in range(n):
        s = f"{number[i]} {direction[i] + ' ' if direction[i] else ''}{base[i]} {suffix[i]}"
        street[i] = f"{s} Apt {unit[i]}{letter[i]}" if unit[i] else s
    city_idx = rng.choice(len(pools.city), size=n, p=pools.city_p)
    zip_int = pools.city_zip[city_idx] + rng.integers(0, 4, size=n) % pools.city_zip_count[city_idx]
    zips = np.array([f"{z:05d}" for z in zip_int], dtype=object)
    return street, pools.city[city_idx], pools.city_state[city_idx], zips


def _email_locals(
    first: np.ndarray, last: np.ndarray, dob: np.ndarray, rng: np.random.Generator
) -> list[str]:
    n = len(first)
    pattern = rng.choice(11, size=n, p=[0.2, 0.14, 0.12, 0.05, 0.1, 0.08, 0.06, 0.05, 0.05, 0.05, 0.1])
    nums = rng.integers(1, 1000, size=n)
    words = rng.choice(np.array(_HANDLE_WORDS, dtype=object), size=(n, 2))
    years = dob.astype("datetime64[Y]").astype(np.int64) + 1970
    out: list[str] = []
    for i in range(n):
        f = "".join(c for c in first[i].lower() if c.isalnum())
        la = "".join(c for c in last[i].lower() if c.isalnum())
        y, k = int(years[i]), int(nums[i])
        out.append(
            (
                f"{f}.{la}",
                f"{f}{la}",
                f"{f[0]}{la}",
                f"{f}_{la}",
                f"{f}.{la}{k % 100:02d}",
                f"{f}{y % 100:02d}",
                f"{f}{la}{y}",
                f"{la}.{f}",
                f"{f[0]}.{la}",
                f"{f}{la[0]}{k}",
                f"{words[i, 0]}{words[i, 1]}{k}",
            )[pattern[i]]
        )
    return out


def _draw_domains(pools: Pools, rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.choice(pools.email_domains, size=n, p=pools.email_domains_p)


def make_people(
    n: int, pools: Pools, rng: np.random.Generator, phenomena: Phenomena = DEFAULT_PHENOMENA
) -> People:
    """Draw n people grouped into households, with unique personal identifiers.

    The `phenomena` draw from a generator spawned from `rng`, so the base draws are the same
    whatever their rates.
    """
    hard = rng.spawn(1)[0]
    sizes = rng.choice(_HOUSEHOLD_SIZES, size=max(n, 1), p=_HOUSEHOLD_SIZE_P)
    cum = np.cumsum(sizes)
    k = int(np.searchsorted(cum, n)) + 1 if n else 0
    sizes = sizes[:k].copy()
    if k:
        sizes[-1] -= cum[k - 1] - n
    household = np.repeat(np.arange(k), sizes)
    head = np.repeat(np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64), sizes) if k else household
    role = np.arange(n) - head
    household_size = sizes[household] if k else household

    # Partner (role 1) or adult child (role >= 2); a minority of co-residents are roommates.
    roommate = np.where(role == 1, rng.random(n) < 0.2, rng.random(n) < 0.15) & (role > 0)
    partner = (role == 1) & ~roommate
    child = (role >= 2) & ~roommate

    female = rng.random(n) < 0.5
    female[partner] = ~female[head[partner]] ^ (rng.random(int(partner.sum())) < 0.1)

    last = rng.choice(pools.last, size=n, p=pools.last_p)
    same_last = (partner & (rng.random(n) < 0.7)) | (child & (rng.random(n) < 0.93))
    last[same_last] = last[head[same_last]]

    first = np.empty(n, dtype=object)
    first[female] = rng.choice(pools.female_first, size=int(female.sum()), p=pools.female_first_p)
    first[~female] = rng.choice(pools.male_first, size=int((~female).sum()), p=pools.male_first_p)
    # Two family members never share a first name; redraw the later one.
    for _ in range(50):
        key = household.astype(str).astype(object) + "|" + first
        _, first_idx = np.unique(key, return_index=True)
        dup = np.ones(n, dtype=bool)
        dup[first_idx] = False
        if not dup.any():
            break
        fem = dup & female
        male = dup & ~female
        first[fem] = rng.choice(pools.female_first, size=int(fem.sum()), p=pools.female_first_p)
        first[male] = rng.choice(pools.male_first, size=int(male.sum()), p=pools.male_first_p)

    age = 18 + 67 * rng.beta(2.0, 2.5, size=n)
    age[partner] = np.maximum(18, age[head[partner]] + rng.normal(0, 4, size=int(partner.sum())))
    kid_age = age[head[child]] - rng.uniform(20, 38, size=int(child.sum()))
    age[child] = np.where(kid_age < 16, rng.uniform(16, 20, size=kid_age.size), kid_age)
    age[roommate] = rng.uniform(19, 45, size=int(roommate.sum()))
    dob = (EPOCH.astype("datetime64[D]") - (age * 365.25).astype(np.int64)).astype("datetime64[D]")

    # Before the e-mails, which are made from the first names: a junior's mailbox is his own.
    junior_of = _juniors(household, role, roommate, female, last, hard, phenomena.junior_rate)
    named = junior_of >= 0
    first[named] = first[junior_of[named]]

    seen: set[str] = set()
    email = np.array(
        [
            f"{loc}@{dom}"
            for loc, dom in zip(
                _email_locals(first, last, dob, rng), _draw_domains(pools, rng, n), strict=True
            )
        ],
        dtype=object,
    )
    _unique(email, seen, rng, _bump_email, key=email_match_key)
    has_alt = rng.random(n) < 0.3
    alt_domain = _draw_domains(pools, rng, n)
    alt_local = _email_locals(first, last, dob, rng)
    alt_email = np.array(
        [f"{loc}@{dom}" if h else "" for loc, dom, h in zip(alt_local, alt_domain, has_alt, strict=True)],
        dtype=object,
    )
    _unique(alt_email, seen, rng, _bump_email, key=email_match_key)

    # Household-level attributes: drawn once per household, then broadcast to members.
    multi = sizes >= 2
    fam_last = last[np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)] if k else last
    fam_has = multi & (rng.random(k) < 0.2)
    fam_domain = _draw_domains(pools, rng, k)
    fam_style = rng.integers(0, 3, size=k)
    family = np.array(
        [
            (
                ""
                if not h
                else (f"{la.lower()}family@{d}", f"the{la.lower()}s@{d}", f"{la.lower()}house@{d}")[s]
            )
            for la, d, h, s in zip(fam_last, fam_domain, fam_has, fam_style, strict=True)
        ],
        dtype=object,
    )
    _unique(family, seen, rng, _bump_email, key=email_match_key)

    phones_seen: set[str] = set()
    mobile = _phone_numbers(pools, rng, n)
    _unique(mobile, phones_seen, rng, _bump_phone(pools))
    landline = np.where(rng.random(k) < np.where(multi, 0.35, 0.12), _phone_numbers(pools, rng, k), "")
    landline = landline.astype(object)
    _unique(landline, phones_seen, rng, _bump_phone(pools))

    ssn = _ssns(rng, n)
    _unique(ssn, set(), rng, _bump_ssn)

    street, city, state, zips = _addresses(pools, rng, k)
    zip4 = np.array([f"{z:04d}" for z in rng.integers(1, 10000, size=k)], dtype=object)
    moved = rng.random(k) < _MOVED_HOUSEHOLD_RATE
    o_street, o_city, o_state, o_zip = _addresses(pools, rng, k)
    blank = np.full(k, "", dtype=object)
    moved_days = np.where(moved, rng.integers(60, 1100, size=k), 0)
    home_ip = random_public_ips(rng, k)

    ios = rng.random(n) < 0.45
    device = uuids(rng, n, ios)
    device2 = np.where(rng.random(n) < 0.3, uuids(rng, n, ios), "").astype(object)
    anon = uuids(rng, n)
    anon2 = np.where(rng.random(n) < 0.25, uuids(rng, n), "").astype(object)

    tablet = multi & (hard.random(k) < phenomena.shared_device_rate)
    tablet_id = uuids(hard, k, hard.random(k) < 0.5)
    family_device = np.where(tablet, tablet_id, "").astype(object)
    dob_withheld = hard.random(n) < phenomena.dob_withheld_rate

    hh = household
    return People(
        person_id=np.array([f"P{i:08d}" for i in range(n)], dtype=object),
        household=household,
        household_size=household_size,
        female=female,
        first=first,
        last=last,
        dob=dob,
        email=email,
        alt_email=alt_email,
        family_email=family[hh],
        mobile=mobile,
        landline=landline[hh],
        ssn=ssn,
        street=street[hh],
        city=city[hh],
        state=state[hh],
        zip=zips[hh],
        zip4=zip4[hh],
        old_street=np.where(moved, o_street, blank)[hh],
        old_city=np.where(moved, o_city, blank)[hh],
        old_state=np.where(moved, o_state, blank)[hh],
        old_zip=np.where(moved, o_zip, blank)[hh],
        moved_days_ago=moved_days[hh],
        home_ip=home_ip[hh],
        ios=ios,
        device=device,
        device2=device2,
        anon=anon,
        anon2=anon2,
        junior_of=junior_of,
        family_device=family_device[hh],
        dob_withheld=dob_withheld,
    )


def _juniors(
    household: np.ndarray,
    role: np.ndarray,
    roommate: np.ndarray,
    female: np.ndarray,
    last: np.ndarray,
    rng: np.random.Generator,
    rate: float,
) -> np.ndarray:
    """For each person, the father he is named after (-1 for most people).

    The father is the household's head, or else its partner (role 1, not a roommate), if male;
    a son is a male child (role 2 and up, not a roommate) with the father's surname. Of the
    father-son pairs, `rate` are a Sr and a Jr; one son per father at most.
    """
    n = len(household)
    out = np.full(n, -1, dtype=np.int64)
    draw = rng.random(n)  # drawn whatever the rate, so other phenomena's draws do not move
    if n == 0 or rate <= 0:
        return out
    father = np.full(int(household.max()) + 1, -1, dtype=np.int64)
    partner = (role == 1) & ~roommate & ~female
    father[household[partner]] = np.flatnonzero(partner)
    male_head = (role == 0) & ~female
    father[household[male_head]] = np.flatnonzero(male_head)  # the head wins over a partner
    dad = father[household]
    son = (role >= 2) & ~roommate & ~female & (dad >= 0)
    son &= last == last[np.where(dad >= 0, dad, 0)]
    taken: set[int] = set()
    for i in np.flatnonzero(son & (draw < rate)):
        if dad[i] not in taken:
            taken.add(int(dad[i]))
            out[i] = dad[i]
    return out
