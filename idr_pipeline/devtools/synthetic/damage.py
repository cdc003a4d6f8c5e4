"""The ways real source systems mangle a person's true values.

Each function takes a column (numpy object array) of true values plus the run's generator and
returns a damaged copy. Every random decision is drawn as one numpy array per column, and the
per-element string work runs only on the rows a decision selected, so a run costs a few list
comprehensions per field rather than a Python loop with many draws per record. Rates are
module constants so that tests and readers can see how dirty the data is meant to be.

The damage is chosen to be the kind a resolver must see through (case, spacing, formatting,
nicknames, abbreviations, Gmail dots and tags) plus a little it must *not* see through
(a typo'd domain is genuinely a different address), because a generator that only produces
resolvable noise would flatter the matcher.
"""

from __future__ import annotations

import re
import unicodedata

import numpy as np

# Given name -> common short forms. Small on purpose: the point is that the matcher meets
# nicknames, not that the table is complete.
NICKNAMES: dict[str, tuple[str, ...]] = {
    "Robert": ("Bob", "Rob", "Bobby"), "William": ("Bill", "Will", "Billy"),
    "Elizabeth": ("Liz", "Beth", "Betty"), "Katherine": ("Kate", "Kathy", "Katie"),
    "Catherine": ("Cathy", "Kate"), "James": ("Jim", "Jimmy"), "John": ("Johnny", "Jack"),
    "Michael": ("Mike",), "Richard": ("Rick", "Dick"), "Thomas": ("Tom", "Tommy"),
    "Christopher": ("Chris",), "Daniel": ("Dan", "Danny"), "Matthew": ("Matt",),
    "Anthony": ("Tony",), "Joseph": ("Joe", "Joey"), "Charles": ("Charlie", "Chuck"),
    "Edward": ("Ed", "Eddie", "Ted"), "Steven": ("Steve",), "Stephen": ("Steve",),
    "Jennifer": ("Jen", "Jenny"), "Margaret": ("Maggie", "Peggy"), "Patricia": ("Pat", "Patty"),
    "Susan": ("Sue",), "Deborah": ("Debbie", "Deb"), "Rebecca": ("Becky",), "Jessica": ("Jess",),
    "Samantha": ("Sam",), "Alexander": ("Alex",), "Benjamin": ("Ben",), "Jonathan": ("Jon",),
    "Nicholas": ("Nick",), "Andrew": ("Andy", "Drew"), "Joshua": ("Josh",), "Timothy": ("Tim",),
    "Kenneth": ("Ken", "Kenny"), "Gregory": ("Greg",), "Samuel": ("Sam",), "Victoria": ("Vicky",),
    "Christine": ("Chris",), "Cynthia": ("Cindy",), "Barbara": ("Barb",), "Kimberly": ("Kim",),
    "Pamela": ("Pam",), "Ronald": ("Ron",), "Donald": ("Don",), "Douglas": ("Doug",),
    "Gerald": ("Jerry",), "Lawrence": ("Larry",), "Raymond": ("Ray",), "Peter": ("Pete",),
    "Frederick": ("Fred",), "Theodore": ("Ted", "Teddy"), "Abigail": ("Abby",), "Amanda": ("Mandy",),
    "Jacqueline": ("Jackie",), "Judith": ("Judy",), "Zachary": ("Zach",), "Nathaniel": ("Nate",),
    "Nathan": ("Nate",), "Jeffrey": ("Jeff",), "Philip": ("Phil",), "Vincent": ("Vince",),
    "Henry": ("Hank",), "Walter": ("Walt",), "Jacob": ("Jake",), "David": ("Dave",),
    "Jeremy": ("Jerry",), "Melissa": ("Missy",), "Alexandra": ("Alex", "Lexi"), "Nancy": ("Nan",),
}  # fmt: skip

# Canonical street words (as people.py writes them) -> spellings seen in source systems.
STREET_ABBREVIATIONS: dict[str, tuple[str, ...]] = {
    "Street": ("St", "St.", "Str"), "Avenue": ("Ave", "Ave.", "Av"), "Road": ("Rd", "Rd."),
    "Drive": ("Dr", "Dr."), "Lane": ("Ln", "Ln."), "Court": ("Ct", "Ct."),
    "Boulevard": ("Blvd", "Blvd."), "Place": ("Pl", "Pl."), "Way": ("Wy",), "Circle": ("Cir", "Cir."),
    "Terrace": ("Ter", "Terr"), "Parkway": ("Pkwy", "Pky"), "Trail": ("Trl",), "Highway": ("Hwy",),
    "North": ("N", "N."), "South": ("S", "S."), "East": ("E", "E."), "West": ("W", "W."),
    "Apt": ("Apartment", "Apt.", "#", "Unit", "APT"),
}  # fmt: skip

_STREET_WORD = re.compile(r"\b(" + "|".join(STREET_ABBREVIATIONS) + r")\b")
_TITLES_MALE = np.array(["Mr.", "Mr", "Dr.", "MR"], dtype=object)
_TITLES_FEMALE = np.array(["Ms.", "Mrs.", "Mrs", "Dr.", "Miss"], dtype=object)
_ACCENTS = {"e": "é", "a": "á", "o": "ó", "i": "í", "u": "ü", "n": "ñ", "c": "ç"}
_MONTH_ABBR = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_GMAIL_TAGS = np.array(["shop", "news", "promo", "spam", "deals", "amazon", "2024", "signup"], dtype=object)
_DOMAIN_TYPOS = {"gmail.com": "gmial.com", "yahoo.com": "yaho.com", "hotmail.com": "hotmial.com"}
_MISSING_MARKERS = np.array(["", "", "", "", "N/A", "null", "-", "NONE"], dtype=object)
_LETTERS = np.array(list("abcdefghijklmnopqrstuvwxyz"), dtype=object)

# Phone formats, applied to a 10-digit national number.
PHONE_FORMATS: tuple[str, ...] = (
    "({a}) {e}-{s}",
    "{a}.{e}.{s}",
    "+1 {a} {e} {s}",
    "1-{a}-{e}-{s}",
    "{a}{e}{s}",
    "{a}-{e}-{s}",
    "+1{a}{e}{s}",
)

# Date-of-birth formats; the standardizer reads all of them (US month-first for the numeric one).
DOB_FORMATS: tuple[str, ...] = ("iso", "us", "dd_mon_yyyy", "yyyymmdd", "us_short")
UNPARSEABLE_DOBS = np.array(
    ["unknown", "00/00/0000", "31/31/1985", "19xx", "n/a?", "2/30/1990"], dtype=object
)


def pick(rng: np.random.Generator, rate: float, n: int, eligible: np.ndarray | None = None) -> np.ndarray:
    """Boolean mask of rows to damage: each row independently with probability `rate`."""
    mask = rng.random(n) < rate
    return mask & eligible if eligible is not None else mask


def _apply(values: np.ndarray, mask: np.ndarray, fn, *extra: np.ndarray) -> None:
    """values[mask] = fn(value, *extra_at_row) for the selected rows only, in place."""
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return
    cols = [e[idx] for e in extra]
    values[idx] = np.array([fn(values[i], *(c[j] for c in cols)) for j, i in enumerate(idx)], dtype=object)


def nonempty(values: np.ndarray) -> np.ndarray:
    """Mask of rows holding a value (empty string means absent throughout the generator)."""
    return values != ""


# ----------------------------------------------------------------------------------- names


def typo(word: str, kind: int, pos: float, letter: str) -> str:
    """One keyboard slip: 0 delete, 1 substitute, 2 insert, 3 transpose neighbors.

    These are exactly one edit (Damerau) away from the truth, the distance fuzzy matchers are
    tuned for.
    """
    if len(word) < 3:
        return word
    i = 1 + int(pos * (len(word) - 2))  # never the first letter: people rarely get that wrong
    if kind == 0:
        return word[:i] + word[i + 1 :]
    if kind == 1:
        return word[:i] + (letter if letter != word[i].lower() else "x") + word[i + 1 :]
    if kind == 2:
        return word[:i] + letter + word[i:]
    j = min(i + 1, len(word) - 1)
    return word[:i] + word[j] + word[i] + word[j + 1 :] if j != i else word


def accent(word: str, decompose: bool) -> str:
    """Accent the last accentable letter ('Renee' -> 'Renée'); sometimes as NFD code points.

    Decomposed accents (e + U+0301) look identical on screen but differ byte-wise, which is
    what a Mac keyboard or a careless export produces.
    """
    for i in range(len(word) - 1, 0, -1):
        repl = _ACCENTS.get(word[i])
        if repl:
            out = word[:i] + repl + word[i + 1 :]
            return unicodedata.normalize("NFD", out) if decompose else out
    return word


def case_noise(values: np.ndarray, rng: np.random.Generator, rate: float) -> np.ndarray:
    """UPPER, lower or Title case on a fraction of rows: legacy systems shout, forms whisper."""
    out = values.copy()
    mask = pick(rng, rate, len(values), nonempty(values))
    style = rng.integers(0, 3, size=len(values))
    _apply(out, mask & (style == 0), str.upper)
    _apply(out, mask & (style == 1), str.lower)
    _apply(out, mask & (style == 2), str.title)
    return out


def whitespace_noise(values: np.ndarray, rng: np.random.Generator, rate: float) -> np.ndarray:
    """Leading/trailing/double spaces, the residue of copy-paste and fixed-width exports."""
    out = values.copy()
    mask = pick(rng, rate, len(values), nonempty(values))
    style = rng.integers(0, 3, size=len(values))
    _apply(out, mask & (style == 0), lambda v: f" {v}")
    _apply(out, mask & (style == 1), lambda v: f"{v}  ")
    _apply(out, mask & (style == 2), lambda v: f"  {v} ")
    return out


def first_names(
    first: np.ndarray, female: np.ndarray, rng: np.random.Generator, nickname_rate: float = 0.15
) -> np.ndarray:
    """Nicknames, typos, accents, titles, case and spacing noise on given names."""
    n = len(first)
    out = first.copy()
    has_nick = np.array([f in NICKNAMES for f in first], dtype=bool) if n else np.zeros(0, bool)
    nick_mask = pick(rng, nickname_rate, n, has_nick)
    choice = rng.random(n)
    _apply(out, nick_mask, lambda v, c: NICKNAMES[v][int(c * len(NICKNAMES[v]))], choice)
    out = _typos_accents(out, rng, typo_rate=0.04, accent_rate=0.025)
    title_mask = pick(rng, 0.03, n, nonempty(out))
    titles = np.where(female, rng.choice(_TITLES_FEMALE, size=n), rng.choice(_TITLES_MALE, size=n)).astype(
        object
    )
    _apply(out, title_mask, lambda v, t: f"{t} {v}", titles)
    return whitespace_noise(case_noise(out, rng, 0.08), rng, 0.03)


def first_initials(
    names: np.ndarray, true_first: np.ndarray, initial_only: np.ndarray, dot: np.ndarray
) -> np.ndarray:
    """Where `initial_only`, the given name shrinks to its true initial: 'J' or 'J.' (`dot`)."""
    out = names.copy()
    idx = np.flatnonzero(initial_only & nonempty(true_first))
    out[idx] = np.array([f"{true_first[i][0].upper()}{'.' if dot[i] else ''}" for i in idx], dtype=object)
    return out


def last_names(last: np.ndarray, suffix: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Typos, accents, case and spacing noise on family names; generational suffixes.

    `suffix` is the person's true 'Jr'/'Sr' (or ''); it is a real part of the identity, so it
    is written in most but not all records, in the spellings forms produce.
    """
    n = len(last)
    out = _typos_accents(last.copy(), rng, typo_rate=0.03, accent_rate=0.01)
    show = pick(rng, 0.7, n, (suffix != "") & nonempty(out))
    style = rng.integers(0, 3, size=n)
    _apply(out, show & (style == 0), lambda v, s: f"{v} {s}", suffix)
    _apply(out, show & (style == 1), lambda v, s: f"{v}, {s}.", suffix)
    _apply(out, show & (style == 2), lambda v, s: f"{v} {s.upper()}", suffix)
    return whitespace_noise(case_noise(out, rng, 0.08), rng, 0.03)


def _typos_accents(
    values: np.ndarray, rng: np.random.Generator, typo_rate: float, accent_rate: float
) -> np.ndarray:
    n = len(values)
    present = nonempty(values)
    kind = rng.integers(0, 4, size=n)
    pos = rng.random(n)
    letter = rng.choice(_LETTERS, size=n)
    _apply(values, pick(rng, typo_rate, n, present), typo, kind, pos, letter)
    decompose = rng.random(n) < 0.3
    _apply(values, pick(rng, accent_rate, n, present), accent, decompose)
    return values


# ----------------------------------------------------------------------------------- emails


def gmail_variant(email: str, dots: bool, tag: str, cut: float) -> str:
    """Same Gmail mailbox, different spelling: dots moved/added/removed and a +tag."""
    local, _, domain = email.partition("@")
    if dots:
        bare = local.replace(".", "")
        if "." in local and cut < 0.5:
            local = bare
        elif len(bare) > 2:
            i = 1 + int(cut * (len(bare) - 2))
            local = bare[:i] + "." + bare[i:]
    if tag:
        local = f"{local}+{tag}"
    return f"{local}@{domain}"


def emails(values: np.ndarray, rng: np.random.Generator, case_rate: float = 0.1) -> np.ndarray:
    """Gmail dots/+tags, case, whitespace and the occasional domain typo."""
    n = len(values)
    out = values.copy()
    gmail = np.array([v.endswith("@gmail.com") for v in values], dtype=bool) if n else np.zeros(0, bool)
    dots = rng.random(n) < 0.6
    tags = np.where(rng.random(n) < 0.4, rng.choice(_GMAIL_TAGS, size=n), "").astype(object)
    cut = rng.random(n)
    _apply(out, pick(rng, 0.35, n, gmail), gmail_variant, dots, tags, cut)
    _apply(
        out,
        pick(rng, 0.01, n, nonempty(out)),
        lambda v: v.rsplit("@", 1)[0] + "@" + _DOMAIN_TYPOS.get(v.rsplit("@", 1)[1], "gmai.com"),
    )
    style = rng.integers(0, 3, size=n)
    mask = pick(rng, case_rate, n, nonempty(out))
    _apply(out, mask & (style == 0), str.upper)
    _apply(out, mask & (style != 0), lambda v: v[:1].upper() + v[1:].replace("@g", "@G").replace("@y", "@Y"))
    return whitespace_noise(out, rng, 0.05)


# ----------------------------------------------------------------------------------- phones


def phones(digits: np.ndarray, rng: np.random.Generator, weights: tuple[float, ...]) -> np.ndarray:
    """Format 10-digit numbers in the source's habitual mix of PHONE_FORMATS."""
    n = len(digits)
    fmt = rng.choice(len(PHONE_FORMATS), size=n, p=np.asarray(weights) / sum(weights))
    out = np.array(
        [
            PHONE_FORMATS[f].format(a=d[:3], e=d[3:6], s=d[6:]) if d else ""
            for d, f in zip(digits, fmt, strict=True)
        ],
        dtype=object,
    )
    # A dropped digit: the number is then invalid and must not be trusted as an identifier.
    _apply(out, pick(rng, 0.005, n, nonempty(out)), lambda v: v[:-1])
    return out


# ----------------------------------------------------------------------------------- dates


def format_dobs(dob: np.ndarray, rng: np.random.Generator, weights: tuple[float, ...]) -> np.ndarray:
    """Dates of birth in the source's habitual mix of DOB_FORMATS, a few unparseable."""
    n = len(dob)
    ymd = dob.astype("datetime64[D]").astype(str)
    fmt = rng.choice(len(DOB_FORMATS), size=n, p=np.asarray(weights) / sum(weights))
    out = np.empty(n, dtype=object)
    for i in range(n):
        y, m, d = ymd[i][:4], ymd[i][5:7], ymd[i][8:10]
        f = fmt[i]
        if f == 0:
            out[i] = ymd[i]
        elif f == 1:
            out[i] = f"{m}/{d}/{y}"
        elif f == 2:
            out[i] = f"{d} {_MONTH_ABBR[int(m) - 1]} {y}"
        elif f == 3:
            out[i] = f"{y}{m}{d}"
        else:
            out[i] = f"{int(m)}/{int(d)}/{y[2:]}"
    bad = pick(rng, 0.004, n)
    out[bad] = rng.choice(UNPARSEABLE_DOBS, size=int(bad.sum()))
    filler = pick(rng, 0.003, n)
    out[filler] = "1900-01-01"
    return out


def timestamps(seconds_ago: np.ndarray, epoch: np.datetime64, style: str) -> np.ndarray:
    """`updated_at` strings, measured back from the fixed EPOCH (never the wall clock)."""
    moments = (epoch - seconds_ago.astype("timedelta64[s]")).astype("datetime64[s]")
    iso = np.datetime_as_string(moments, unit="s").tolist()
    if style == "space":
        return np.array([t.replace("T", " ") for t in iso], dtype=object)
    endings = {"zulu": "Z", "millis": ".000Z", "offset": "+00:00"}
    if style in endings:
        end = endings[style]
        return np.array([t + end for t in iso], dtype=object)
    raise ValueError(f"unknown timestamp style {style!r}")


# ----------------------------------------------------------------------------------- addresses


def streets(values: np.ndarray, rng: np.random.Generator, abbreviate_rate: float = 0.6) -> np.ndarray:
    """Abbreviate suffixes, directions and unit words; case and comma noise."""
    n = len(values)
    out = values.copy()
    seeds = rng.integers(0, 2**31, size=n)

    def abbreviate(street: str, seed: int) -> str:
        # A per-row integer picks each word's spelling, so a row is abbreviated consistently
        # without drawing from the generator inside the loop.
        def repl(m: re.Match[str]) -> str:
            options = STREET_ABBREVIATIONS[m.group(1)]
            k = (seed >> (2 * m.start() % 24)) % (len(options) + 1)
            return m.group(1) if k == len(options) else options[k]

        return _STREET_WORD.sub(repl, street).replace(" # ", " #")

    _apply(out, pick(rng, abbreviate_rate, n, nonempty(out)), abbreviate, seeds)
    has_apt = np.array([" Apt" in v for v in out], dtype=bool) if n else np.zeros(0, bool)
    _apply(out, pick(rng, 0.05, n, has_apt), lambda v: v.replace(" Apt", ", Apt"))
    return whitespace_noise(case_noise(out, rng, 0.1), rng, 0.02)


def states(codes: np.ndarray, names: dict[str, str], rng: np.random.Generator) -> np.ndarray:
    """Two-letter code mostly; full name or lower case sometimes."""
    n = len(codes)
    out = codes.copy()
    _apply(out, pick(rng, 0.15, n, nonempty(out)), lambda v: names.get(v, v))
    _apply(out, pick(rng, 0.05, n, nonempty(out)), str.lower)
    return out


def zips(zip5: np.ndarray, zip4: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """ZIP, ZIP+4, or a ZIP that lost its leading zero to a spreadsheet."""
    n = len(zip5)
    out = zip5.copy()
    _apply(out, pick(rng, 0.15, n, nonempty(out)), lambda v, p: f"{v}-{p}", zip4)
    lost_zero = np.array([v.startswith("0") for v in out], dtype=bool) if n else np.zeros(0, bool)
    _apply(out, pick(rng, 0.3, n, lost_zero), lambda v: v.lstrip("0") or v)
    return out


def countries(n: int, rng: np.random.Generator, present_rate: float) -> np.ndarray:
    """The US, written the many ways a free-text country box collects."""
    spellings = np.array(
        ["US", "USA", "United States", "us", "U.S.A.", "United States of America"], dtype=object
    )
    out = rng.choice(spellings, size=n, p=[0.4, 0.25, 0.2, 0.05, 0.05, 0.05])
    out[rng.random(n) >= present_rate] = ""
    return out


# ----------------------------------------------------------------------------------- missing


def blank_out(
    values: np.ndarray, rng: np.random.Generator, present_rate: float, markers: bool = True
) -> np.ndarray:
    """Drop a field on a fraction of rows; CSV-ish sources sometimes write N/A or null instead."""
    n = len(values)
    out = values.copy()
    gone = rng.random(n) >= present_rate
    out[gone] = rng.choice(_MISSING_MARKERS, size=int(gone.sum())) if markers else ""
    return out
