"""Comparison vectors for record pairs: one small integer agreement level per comparison.

Fellegi-Sunter needs each pair reduced to discrete agreement levels whose evidence is (close to)
conditionally independent given match status. The levels here are ordered from 0 ("else",
disagreement) upward to the strongest agreement; -1 means a value is missing on either side and
contributes no evidence at all, which is different from disagreement.

Speed: a pair frame repeats the same records many times, so every column is factorized once
over both sides and derived features (e-mail local part, last seven phone digits, date parts,
nickname groups) are computed on the distinct values only; equality becomes integer comparison
of codes, and string similarity (rapidfuzz `cpdist`) runs only on pairs that are present and not
already equal. There is no Python loop over pairs.

Independence notes (why no evidence is counted twice):

* first/last name swap (and "one name matches crosswise", a name moved to the other field) are
  levels of `first_name` only. When one fires, `last_name` is set to -1 (missing), so the joint
  outcome of both name fields is counted once, by that level's own m/u, instead of as a
  first-name bonus plus a last-name disagreement penalty.
* generational suffixes (Jr, Sr, III) are stripped before the last names are compared and
  compared on their own in `name_suffix`; otherwise 'Smith Jr' vs 'Smith' would be a fuzzy
  surname (wrong evidence) and the father/son conflict would be invisible.
* an e-mail handle made of the person's names (`anna.novak@…`, `annanovak@…`) repeats the name
  comparisons: two namesakes' handles agree as well as their names do. The `same local part`
  and `similar local part` levels therefore compare what each handle holds beyond its own
  record's given name and surname (`jlewis960` holds `j960`; `debbie.bautista` holds nothing)
  and fire only when both handles hold something and that agrees. A handle that is only the
  name falls to `same domain only` or `else`.
* street, postcode and city are one comparison because they are strongly dependent (the same
  street almost implies the same postcode and city); as separate comparisons they would count
  one address three times.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from rapidfuzz.distance import OSA, JaroWinkler, Levenshtein
from rapidfuzz.process import cpdist

from idr_pipeline.standardize.nicknames import GROUP_IDS, nickname_groups

MISSING = -1


@dataclass(frozen=True, eq=True)
class Comparison:
    """One comparison: its level labels (index = level, 0 = else) and term-frequency levels.

    `tf_levels` maps a level to the value column whose frequency replaces u for that level: an
    exact match on 'Smith' is weaker evidence than one on 'Zbikowski'.
    """

    name: str
    levels: tuple[str, ...]
    tf_levels: Mapping[int, str] = field(default_factory=dict)
    description: str = ""

    @property
    def n_levels(self) -> int:
        return len(self.levels)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "levels": list(self.levels),
            "tf_levels": {str(k): v for k, v in self.tf_levels.items()},
            "description": self.description,
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> Comparison:
        return cls(
            name=data["name"],
            levels=tuple(data["levels"]),
            tf_levels={int(k): v for k, v in data.get("tf_levels", {}).items()},
            description=data.get("description", ""),
        )


FIRST_NAME = Comparison(
    "first_name",
    (
        "else",
        "one name matches crosswise",
        "initial matches",
        "jaro-winkler >= 0.85",
        "jaro-winkler >= 0.92",
        "nickname or same first token",
        "exact",
        "first and last swapped (JW >= 0.92 crosswise)",
    ),
    {6: "first_name"},
    "Given names; the swap and crosswise levels consume the last-name evidence (last_name is then -1).",
)
LAST_NAME = Comparison(
    "last_name",
    ("else", "jaro-winkler >= 0.85", "jaro-winkler >= 0.92", "exact"),
    {3: "last_name"},
    "Surnames without generational suffix.",
)
NAME_SUFFIX = Comparison(
    "name_suffix",
    ("conflicting suffix", "suffix on one side only", "same suffix"),
    {},
    "Jr/Sr/II/III/IV; -1 when neither side has one.",
)
EMAIL = Comparison(
    "email",
    ("else", "same domain only", "similar local part", "same local part", "exact email key"),
    {},
    "On email_key (gmail dots/+tags folded).",
)
PHONE = Comparison("phone", ("else", "same last 7 digits", "exact"), {}, "E.164 numbers.")
DOB = Comparison(
    "dob",
    (
        "else",
        "same year and month",
        "one character typo",
        "year off by one",
        "day and month transposed",
        "exact",
    ),
    {5: "dob"},
    "ISO dates.",
)
ADDRESS = Comparison(
    "address",
    (
        "else",
        "same city only",
        "same postcode only",
        "same street, postcode differs or missing",
        "similar street and same postcode",
        "same street and postcode",
    ),
    {2: "postcode", 1: "city"},
    "Street, postcode and city as one comparison (they are not independent).",
)
NATIONAL_ID = Comparison("national_id", ("else", "one edit", "exact"), {}, "Typo = one OSA edit.")
DEVICE_ID = Comparison("device_id", ("else", "exact"), {})
IP_ADDRESS = Comparison("ip_address", ("else", "exact"), {}, "Weak: shared by households.")
EMBEDDING = Comparison(
    "embedding",
    ("else", "cosine >= 0.80", "cosine >= 0.88", "cosine >= 0.95"),
    {},
    "Optional; -1 when no cosine is given.",
)

COMPARISONS: list[Comparison] = [
    FIRST_NAME,
    LAST_NAME,
    NAME_SUFFIX,
    EMAIL,
    PHONE,
    DOB,
    ADDRESS,
    NATIONAL_ID,
    DEVICE_ID,
    IP_ADDRESS,
    EMBEDDING,
]
COMPARISONS_BY_NAME: dict[str, Comparison] = {c.name: c for c in COMPARISONS}

_SUFFIX = re.compile(r"\s+(jr|sr|ii|iii|iv|2nd|3rd|4th)\.?$", re.IGNORECASE)
_SUFFIX_CANON = {
    "jr": "Jr",
    "sr": "Sr",
    "ii": "II",
    "2nd": "II",
    "iii": "III",
    "3rd": "III",
    "iv": "IV",
    "4th": "IV",
}
_STREET_NUMBER = re.compile(r"^\s*(\d+[a-zA-Z]?)\b")
_NON_DIGIT = re.compile(r"\D")
_NON_ALNUM = re.compile(r"[^0-9a-z]+")
_LETTERS = re.compile(r"[a-z]+")
_HANDLE_SEPARATORS = re.compile(r"[._-]+")
_MAX_GROUPS = 3  # a diminutive rarely belongs to more than three name groups


def _clean(value: object) -> str | None:
    """Strip; empty strings, None and NaN are missing; integers (a numeric postcode) become text."""
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))  # an integer column with gaps arrives as float
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value or None


def _lower(value: object) -> str | None:
    value = _clean(value)
    return value.lower() if value else None


def _upper_compact(value: object) -> str | None:
    """Postcodes and ids: case, spaces and dashes are formatting, not identity."""
    value = _clean(value)
    return (value.upper().replace(" ", "").replace("-", "") or None) if value else None


def split_suffix(name: str | None) -> tuple[str | None, str | None]:
    """('Smith Jr') -> ('Smith', 'Jr'): the surname without, and the canonical suffix."""
    name = _clean(name)
    if name is None:
        return None, None
    match = _SUFFIX.search(name)
    if not match:
        return name, None
    base = name[: match.start()].strip() or None
    return base, _SUFFIX_CANON[match.group(1).lower()]


def _dob_parts(value: str) -> tuple[int, int, int]:
    try:
        return int(value[0:4]), int(value[5:7]), int(value[8:10])
    except (ValueError, TypeError):
        return -1, -1, -1


def _tf_key(column: str, value: object) -> str | None:
    """The value term frequencies are counted on, identical in `term_frequencies` and `tf_values`."""
    value = _clean(value)
    if value is None:
        return None
    if column == "last_name":
        return split_suffix(value)[0]
    return value


class _Codes:
    """Several columns factorized into one shared code space (missing = -1)."""

    def __init__(self, *columns: pd.Series | np.ndarray, clean: Callable[[object], object] = _clean) -> None:
        if not columns:
            raise ValueError("at least one column")
        lengths = [len(c) for c in columns]
        both = np.concatenate([np.asarray(c, dtype=object) for c in columns])
        raw_codes, raw_uniques = pd.factorize(both, use_na_sentinel=True)
        self._set(raw_codes, [clean(v) for v in raw_uniques], lengths)

    def _set(self, raw_codes: np.ndarray, cleaned: list[object], lengths: list[int]) -> None:
        codes2, uniques = pd.factorize(pd.Series(cleaned, dtype=object), use_na_sentinel=True)
        codes2 = np.append(codes2, MISSING).astype(np.int64)  # raw -1 indexes the sentinel
        self.uniques: np.ndarray = np.asarray(uniques, dtype=object)
        self.codes: list[np.ndarray] = np.split(codes2[raw_codes], np.cumsum(lengths)[:-1])

    def values(self, codes: np.ndarray) -> np.ndarray:
        """Strings for codes ('' where missing), for rapidfuzz."""
        return np.append(self.uniques, "")[codes]

    def derive(self, fn: Callable[[str], object]) -> _Codes:
        """The same columns mapped through fn (computed once per distinct value) and re-factorized."""
        derived = object.__new__(_Codes)
        derived._set(np.concatenate(self.codes), [fn(v) for v in self.uniques], [len(c) for c in self.codes])
        return derived

    def lookup(self, table: np.ndarray, codes: np.ndarray, fill: object = -1) -> np.ndarray:
        """Per-distinct-value feature (1-d or rows of 2-d) indexed by codes, `fill` where missing."""
        pad = np.full((1, *table.shape[1:]), fill, dtype=table.dtype)
        return np.concatenate([table, pad])[codes]


def _column(frame: pd.DataFrame, name: str) -> np.ndarray:
    """Values of a column as an object array (all None when the frame lacks it), index ignored."""
    if name in frame.columns:
        return frame[name].to_numpy(dtype=object)
    return np.full(len(frame), None, dtype=object)


class Sides:
    """Pairs as two arrays of row positions into one frame of records.

    A candidate set repeats each record many times, and scoring runs it in chunks; factorizing
    a column, cleaning its distinct values and deriving features (local parts, nickname groups)
    is done once per frame and kept in ``cache``, which the chunks of one frame share. A pair's
    codes are then two integer gathers.
    """

    def __init__(
        self, frame: pd.DataFrame, left: np.ndarray, right: np.ndarray, cache: dict | None = None
    ) -> None:
        if len(left) != len(right):
            raise ValueError(f"left has {len(left)} rows, right {len(right)}")
        self.frame = frame
        self.left = np.asarray(left, dtype=np.int64)
        self.right = np.asarray(right, dtype=np.int64)
        self.cache: dict = {} if cache is None else cache

    @classmethod
    def aligned(cls, left: pd.DataFrame, right: pd.DataFrame) -> Sides:
        """Row i of ``left`` against row i of ``right``."""
        if len(left) != len(right):
            raise ValueError(f"left has {len(left)} rows, right {len(right)}")
        frame = pd.concat([left.reset_index(drop=True), right.reset_index(drop=True)], ignore_index=True)
        n = len(left)
        return cls(frame, np.arange(n), np.arange(n, 2 * n))

    def __len__(self) -> int:
        return len(self.left)

    def cached(self, key: object, make: Callable[[], object]):
        if key not in self.cache:
            self.cache[key] = make()
        return self.cache[key]

    def column(self, name: str) -> np.ndarray:
        return self.cached(("column", name), lambda: _column(self.frame, name))

    def codes(self, *columns: str, clean: Callable[[object], object] = _clean) -> _Codes:
        """One shared code space over the frame's columns; ``.codes`` is one array per column."""
        return self.cached(
            ("codes", columns, clean), lambda: _Codes(*(self.column(c) for c in columns), clean=clean)
        )

    def derive(self, codes: _Codes, key: str, fn: Callable[[str], object]) -> _Codes:
        return self.cached(("derive", id(codes), key), lambda: codes.derive(fn))

    def pair(self, codes: _Codes) -> list[np.ndarray]:
        """Per column of ``codes``: the left side's codes, then the right side's."""
        return [c[side] for c in codes.codes for side in (self.left, self.right)]


def _similarity(
    codes: _Codes, left: np.ndarray, right: np.ndarray, mask: np.ndarray, scorer=JaroWinkler
) -> np.ndarray:
    """Normalized similarity where mask, 0 elsewhere; rapidfuzz only sees the masked pairs."""
    out = np.zeros(len(left), dtype=np.float32)
    if mask.any():
        out[mask] = cpdist(
            codes.values(left[mask]),
            codes.values(right[mask]),
            scorer=scorer.normalized_similarity,
            workers=1,
            dtype=np.float32,
        )
    return out


def _distance(
    codes: _Codes, left: np.ndarray, right: np.ndarray, mask: np.ndarray, scorer, cutoff: int
) -> np.ndarray:
    """Edit distance where mask (capped at cutoff + 1), a large value elsewhere."""
    out = np.full(len(left), 127, dtype=np.int16)
    if mask.any():
        out[mask] = cpdist(
            codes.values(left[mask]),
            codes.values(right[mask]),
            scorer=scorer.distance,
            score_cutoff=cutoff,
            workers=1,
            dtype=np.int16,
        )
    return out


def _levels(present: np.ndarray, conditions: list[tuple[int, np.ndarray]]) -> np.ndarray:
    """First true condition in order wins; -1 where not present, 0 where nothing holds."""
    out = np.zeros(len(present), dtype=np.int8)
    decided = np.zeros(len(present), dtype=bool)
    for level, condition in conditions:
        take = condition & ~decided
        out[take] = level
        decided |= take
    out[~present] = MISSING
    return out


def _nickname_table(uniques: np.ndarray) -> np.ndarray:
    groups = np.full((len(uniques), _MAX_GROUPS), -1, dtype=np.int32)
    for i, value in enumerate(uniques):
        for j, key in enumerate(nickname_groups(value)[:_MAX_GROUPS]):
            groups[i, j] = GROUP_IDS[key]
    return groups


def _names(sides: Sides) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """first_name, last_name and name_suffix levels, computed together for the swap rule."""
    raw = sides.codes("first_name", "last_name")
    # one code space for first and last names (needed by the swap rule), suffixes split off
    codes = sides.derive(raw, "base", lambda v: split_suffix(v)[0])
    suffixes = sides.derive(raw, "suffix", lambda v: split_suffix(v)[1])
    fl, fr, ll, lr = sides.pair(codes)

    # first name
    present = (fl >= 0) & (fr >= 0)
    exact = present & (fl == fr)
    both_last = (ll >= 0) & (lr >= 0)
    swapped = present & ~exact & both_last & (fl == lr) & (ll == fr) & (ll != lr)
    groups = sides.cached("nickname_groups", lambda: _nickname_table(codes.uniques))
    gl, gr = codes.lookup(groups, fl), codes.lookup(groups, fr)
    nick = np.zeros(len(fl), dtype=bool)
    for i in range(_MAX_GROUPS):
        for j in range(_MAX_GROUPS):
            nick |= (gl[:, i] >= 0) & (gl[:, i] == gr[:, j])
    # 'Mary Ann' vs 'Mary': same first token is as good as a nickname.
    token = sides.derive(
        codes, "first_token", lambda v: (v.lower().replace("-", " ").replace(".", " ").split() or [None])[0]
    )
    tl, tr = sides.pair(token)[:2]
    nick |= present & (tl >= 0) & (tl == tr)
    # 'J' vs 'John': one side is an initial and the letters agree.
    is_initial = sides.cached("is_initial", lambda: np.array([len(t) == 1 for t in token.uniques] + [False]))
    letter_l, letter_r = sides.pair(sides.derive(token, "letter", lambda v: v[0]))[:2]
    initial_match = present & (is_initial[tl] | is_initial[tr]) & (letter_l == letter_r)
    jw_first = _similarity(codes, fl, fr, present & ~exact & ~swapped & ~nick)
    # swapped with typos ('Isabella Ctercteko' / 'Ctercteko Isabela'): both crosswise JW >= 0.92
    # while the straight first names do not agree
    maybe_swap = present & both_last & ~exact & ~swapped & ~nick & (jw_first < 0.92) & (ll != lr)
    cross = _similarity(codes, fl, lr, maybe_swap)
    cross_ok = maybe_swap & (cross >= 0.92)
    swapped |= cross_ok & (_similarity(codes, ll, fr, cross_ok) >= 0.92)
    # last name, straight (the swap level, when it fires, has already used it)
    present_last = both_last & ~swapped
    exact_last = present_last & (ll == lr)
    jw_last = _similarity(codes, ll, lr, present_last & ~exact_last)
    # one name moved to the other field ('Flynn Weller' / 'Weller Ebony'): the straight
    # comparisons both disagree, so this joint outcome also takes the last name's place
    crosswise = (
        present
        & present_last
        & ~exact
        & ~nick
        & ~initial_match
        & (jw_first < 0.85)
        & ~exact_last
        & (jw_last < 0.85)
        & ((fl == lr) | (ll == fr))
    )
    first = _levels(
        present,
        [
            (7, swapped),
            (6, exact),
            (5, nick),
            (4, jw_first >= 0.92),
            (3, jw_first >= 0.85),
            (2, initial_match),
            (1, crosswise),
        ],
    )
    present_last &= ~crosswise
    last = _levels(present_last, [(3, exact_last), (2, jw_last >= 0.92), (1, jw_last >= 0.85)])
    # A record without a given name or surname whose e-mail handle spells the other's names.
    first_in_handle, initial_in_handle, last_in_handle = _names_in_handles(sides, codes, fl, fr, ll, lr)
    first[first_in_handle] = 6
    first[initial_in_handle] = 2
    last[last_in_handle] = 3

    # suffix (of the surname; a first name rarely carries one)
    sl, sr = sides.pair(suffixes)[2:]
    has_l, has_r = sl >= 0, sr >= 0
    suffix = _levels(has_l | has_r, [(2, has_l & has_r & (sl == sr)), (1, has_l ^ has_r)])
    return first, last, suffix


def handle_letters(email: object) -> str | None:
    """An e-mail's local part as the letters a name could spell: lower-cased, without a '+tag',
    trailing digits and one separator; None when it holds more (two separators, inner digits)."""
    if not isinstance(email, str):
        return None
    local = email.rsplit("@", 1)[0].lower().split("+", 1)[0].rstrip("0123456789")
    parts = [part for part in _HANDLE_SEPARATORS.split(local) if part]
    letters = "".join(parts)
    return letters if 1 <= len(parts) <= 2 and letters.isalpha() and letters.isascii() else None


def name_letters(name: object) -> str:
    """A name's ASCII letters, lower-cased: what a handle spelling it holds."""
    return "".join(_LETTERS.findall(name.lower())) if isinstance(name, str) else ""


def _names_in_handles(
    sides: Sides, codes: _Codes, fl: np.ndarray, fr: np.ndarray, ll: np.ndarray, lr: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per pair: (the side without a given name has a handle that spells the other's given name
    and surname, ... spells its initial and surname, the side without a surname has a handle
    that spells the other's names either way).

    'debra_brown', 'debrabrown84', 'brown.debra' and 'dbrown' spell Debra Brown. Only pairs
    where one side lacks the name and the other has both are looked at, so a handle never
    speaks against a name: one that spells nothing leaves the level missing, as it was.
    """
    none = np.zeros(len(fl), dtype=bool)
    handle = sides.derive(_email_codes(sides), "handle_letters", handle_letters)
    hl, hr = sides.pair(handle)
    named_l, named_r = (fl >= 0) & (ll >= 0), (fr >= 0) & (lr >= 0)
    look_l = named_r & (hl >= 0) & ((fl < 0) | (ll < 0))  # the left side's handle, the right's names
    look_r = named_l & (hr >= 0) & ((fr < 0) | (lr < 0))
    if not (look_l.any() or look_r.any()):
        return none, none, none
    handle_ids, forward, backward, initial_first = sides.cached(
        "names_spelled", lambda: _spellings(codes, handle)
    )
    full, initial = none.copy(), none.copy()
    for look, nameless, named in ((look_l, sides.left, sides.right), (look_r, sides.right, sides.left)):
        h, other = handle_ids[nameless[look]], named[look]
        full[look] = (h == forward[other]) | (h == backward[other])
        initial[look] = h == initial_first[other]
    first_missing, last_missing = (fl < 0) | (fr < 0), (ll < 0) | (lr < 0)
    return full & first_missing, initial & first_missing, (full | initial) & last_missing


def _spellings(names: _Codes, handle: _Codes) -> tuple[np.ndarray, ...]:
    """Per record, in one code space: its handle's letters, and the ways a handle spells its
    names (given name + surname, surname + given name, initial + surname). Missing ones get
    codes that equal nothing (-1 for the handle, -2 for the names)."""
    firsts, lasts = names.codes[0], names.codes[1]
    letters = [name_letters(v) for v in names.uniques]
    named = np.flatnonzero((firsts >= 0) & (lasts >= 0))
    combos, combo_values = pd.factorize(firsts[named] * np.int64(len(letters) + 1) + lasts[named])
    spelled_combos = [
        (f + s, s + f, f[:1] + s) if f and s else (None, None, None)
        for f, s in (
            (letters[c // (len(letters) + 1)], letters[c % (len(letters) + 1)]) for c in combo_values
        )
    ]
    handles = handle.uniques[handle.codes[0]] if len(handle.uniques) else np.full(len(firsts), None)
    handles = np.where(handle.codes[0] >= 0, handles, None)
    text = np.concatenate([handles, np.array([v for combo in spelled_combos for v in combo], dtype=object)])
    ids, _ = pd.factorize(text, use_na_sentinel=True)
    handle_ids = ids[: len(firsts)]
    per_combo = ids[len(firsts) :].reshape(-1, 3)
    out = [np.full(len(firsts), -2, dtype=np.int64) for _ in range(3)]
    for k in range(3):
        got = per_combo[combos, k]
        out[k][named] = np.where(got >= 0, got, -2)
    return handle_ids, out[0], out[1], out[2]


def _email_keys(sides: Sides) -> np.ndarray:
    """Per record, the e-mail key (gmail dots and '+tags' folded), or the e-mail without one."""
    return sides.cached(
        "email_or_key",
        lambda: pd.Series(sides.column("email_key")).fillna(pd.Series(sides.column("email"))).to_numpy(),
    )


def _email_codes(sides: Sides) -> _Codes:
    return sides.cached("email_codes", lambda: _Codes(_email_keys(sides), clean=_lower))


def _email(sides: Sides) -> np.ndarray:
    codes = _email_codes(sides)
    el, er = sides.pair(codes)
    present = (el >= 0) & (er >= 0)
    exact = present & (el == er)
    local = sides.derive(codes, "local", lambda v: v.rsplit("@", 1)[0] or None)
    domain = sides.derive(codes, "domain", lambda v: (v.rsplit("@", 1)[1] or None) if "@" in v else None)
    ll, lr = sides.pair(local)
    # What each handle holds beyond its record's names; a handle that is only the name is none.
    beyond = sides.cached(
        "email_beyond_names", lambda: _Codes(_handles_beyond_names(sides, _email_keys(sides)))
    )
    bl, br = sides.pair(beyond)
    beyond_names = (bl >= 0) & (br >= 0)
    same_local = present & (ll >= 0) & (ll == lr) & beyond_names
    fuzzy_mask = present & ~exact & ~same_local & (ll >= 0) & (lr >= 0) & beyond_names
    jw = _similarity(local, ll, lr, fuzzy_mask)
    lengths = sides.cached("local_lengths", lambda: np.array([len(v) for v in local.uniques] + [0]))
    # one edit in a short local part ('bob' vs 'rob') is a different mailbox, not a typo
    lev = _distance(local, ll, lr, fuzzy_mask & (np.minimum(lengths[ll], lengths[lr]) >= 5), Levenshtein, 1)
    # ... and what the handles hold beyond the names must agree too: 'vanessa.kennedy87' and
    # 'vanessa.kennedy32' are two namesakes' mailboxes, 'jlewis960' and 'jlewis96' one typo
    # (one edit or one transposition, in what is left of at least three characters).
    beyond_lengths = sides.cached("beyond_lengths", lambda: np.array([len(v) for v in beyond.uniques] + [0]))
    beyond_close = (bl == br) | (
        _distance(
            beyond,
            bl,
            br,
            fuzzy_mask & (np.minimum(beyond_lengths[bl], beyond_lengths[br]) >= 3),
            OSA,
            1,
        )
        <= 1
    )
    fuzzy = fuzzy_mask & ((jw >= 0.9) | (lev <= 1)) & beyond_close
    dl, dr = sides.pair(domain)
    same_domain = present & (dl >= 0) & (dl == dr)
    return _levels(present, [(4, exact), (3, same_local), (2, fuzzy), (1, same_domain)])


def _handles_beyond_names(sides: Sides, emails: np.ndarray) -> np.ndarray:
    """Per record, its e-mail's local part lower-cased, without separators and without the
    record's own given name and surname (each taken out once, the longer first); None where
    there is no e-mail or nothing but those names' initials is left."""
    firsts, lasts = sides.column("first_name"), sides.column("last_name")
    out = np.full(len(emails), None, dtype=object)
    for i, (email, first, last) in enumerate(zip(emails, firsts, lasts, strict=True)):
        if not isinstance(email, str) or not email:
            continue
        handle = _NON_ALNUM.sub("", email.rsplit("@", 1)[0].lower())
        names = [
            _NON_ALNUM.sub("", part)
            for name in (first, split_suffix(last)[0] if isinstance(last, str) else None)
            if isinstance(name, str)
            for part in name.lower().split()
        ]
        for name in sorted((n for n in names if len(n) >= 2), key=len, reverse=True):
            handle = handle.replace(name, "", 1)
        # 'c.nelson' leaves 'c', the given name's initial: still only the name.
        initials = {n[0] for n in names if n}
        out[i] = None if len(handle) <= 2 and set(handle) <= initials else handle
    return out


def _phone(sides: Sides) -> np.ndarray:
    codes = sides.codes("phone")
    pl, pr = sides.pair(codes)
    present = (pl >= 0) & (pr >= 0)
    tail = sides.derive(
        codes, "tail7", lambda v: (lambda d: d[-7:] if len(d) >= 7 else None)(_NON_DIGIT.sub("", v))
    )
    tl, tr = sides.pair(tail)
    return _levels(present, [(2, present & (pl == pr)), (1, (tl >= 0) & (tl == tr))])


def _dob(sides: Sides) -> np.ndarray:
    codes = sides.codes("dob")
    dl, dr = sides.pair(codes)
    present = (dl >= 0) & (dr >= 0)
    exact = present & (dl == dr)
    parts = sides.cached(
        "dob_parts", lambda: np.array([_dob_parts(v) for v in codes.uniques], dtype=np.int32).reshape(-1, 3)
    )
    (yl, ml, xl), (yr, mr, xr) = codes.lookup(parts, dl).T, codes.lookup(parts, dr).T
    valid = present & (yl > 0) & (yr > 0)
    transposed = valid & (yl == yr) & (ml == xr) & (xl == mr) & (ml != xl)
    year_off = valid & (np.abs(yl - yr) == 1) & (ml == mr) & (xl == xr)
    typo = _distance(codes, dl, dr, present & ~exact, Levenshtein, 1) <= 1
    same_ym = valid & (yl == yr) & (ml == mr)
    return _levels(present, [(5, exact), (4, transposed), (3, year_off), (2, typo), (1, same_ym)])


def _address(sides: Sides) -> np.ndarray:
    street = sides.codes("street", clean=_lower)
    sl, sr = sides.pair(street)
    pl, pr = sides.pair(sides.codes("postcode", clean=_upper_compact))
    cl, cr = sides.pair(sides.codes("city", clean=_lower))
    has_street = (sl >= 0) & (sr >= 0)
    has_post = (pl >= 0) & (pr >= 0)
    has_city = (cl >= 0) & (cr >= 0)
    same_street = has_street & (sl == sr)
    same_post = has_post & (pl == pr)
    same_city = has_city & (cl == cr)
    number = sides.derive(street, "number", lambda v: (m := _STREET_NUMBER.match(v)) and m.group(1))
    number_l, number_r = sides.pair(number)
    same_number = (number_l >= 0) & (number_l == number_r)
    jw = _similarity(street, sl, sr, has_street & ~same_street & same_number)
    similar_street = same_number & (jw >= 0.9)
    return _levels(
        has_street | has_post | has_city,
        [
            (5, same_street & same_post),
            (4, similar_street & same_post),
            (3, (same_street | similar_street) & ~same_post),
            (2, same_post),
            (1, same_city),
        ],
    )


def _exact(sides: Sides, column: str) -> np.ndarray:
    a, b = sides.pair(sides.codes(column))
    present = (a >= 0) & (b >= 0)
    return _levels(present, [(1, present & (a == b))])


def _national_id(sides: Sides) -> np.ndarray:
    codes = sides.codes("national_id", clean=_upper_compact)
    a, b = sides.pair(codes)
    present = (a >= 0) & (b >= 0)
    exact = present & (a == b)
    lengths = sides.cached("national_id_lengths", lambda: np.array([len(v) for v in codes.uniques] + [0]))
    edit = _distance(codes, a, b, present & ~exact & (np.minimum(lengths[a], lengths[b]) >= 5), OSA, 1) <= 1
    return _levels(present, [(2, exact), (1, edit)])


def _embedding(n: int, cosine: np.ndarray | None) -> np.ndarray:
    if cosine is None:
        return np.full(n, MISSING, dtype=np.int8)
    cos = np.asarray(cosine, dtype=np.float64)
    if len(cos) != n:
        raise ValueError(f"cosine has {len(cos)} values for {n} pairs")
    present = ~np.isnan(cos)
    with np.errstate(invalid="ignore"):
        return _levels(present, [(3, cos >= 0.95), (2, cos >= 0.88), (1, cos >= 0.80)])


def compare(left: pd.DataFrame, right: pd.DataFrame, cosine: np.ndarray | None = None) -> pd.DataFrame:
    """Agreement levels (int8, one column per comparison in `COMPARISONS` order) for aligned pairs.

    Row i of `left` is compared with row i of `right`; missing profile columns count as missing
    values, so partial frames (e.g. FEBRL without e-mail) work unchanged.
    """
    return compare_sides(Sides.aligned(left, right), cosine)


def compare_sides(sides: Sides, cosine: np.ndarray | None = None) -> pd.DataFrame:
    """`compare` over pairs given as row positions into one frame (see `Sides`)."""
    first, last, suffix = _names(sides)
    columns = {
        "first_name": first,
        "last_name": last,
        "name_suffix": suffix,
        "email": _email(sides),
        "phone": _phone(sides),
        "dob": _dob(sides),
        "address": _address(sides),
        "national_id": _national_id(sides),
        "device_id": _exact(sides, "device_id"),
        "ip_address": _exact(sides, "ip_address"),
        "embedding": _embedding(len(sides), cosine),
    }
    return pd.DataFrame({c.name: columns[c.name].astype(np.int8) for c in COMPARISONS})


def tf_values(
    left: pd.DataFrame,
    right: pd.DataFrame,
    gamma: pd.DataFrame | None = None,
    comparisons: list[Comparison] = COMPARISONS,
) -> pd.DataFrame:
    """The agreed value per TF-adjusted comparison (None unless the pair sits on a TF level).

    On an exact level both sides agree, so the left value serves, or the right one where the left
    record has none (a name its e-mail handle spelled, see `_names_in_handles`). Pass `gamma` when it is
    already computed to avoid comparing twice.
    """
    return tf_values_sides(Sides.aligned(left, right), gamma, comparisons)


def tf_values_sides(
    sides: Sides, gamma: pd.DataFrame | None = None, comparisons: list[Comparison] = COMPARISONS
) -> pd.DataFrame:
    if gamma is None:
        gamma = compare_sides(sides)
    out = {}
    for comparison in comparisons:
        if not comparison.tf_levels:
            continue
        levels = gamma[comparison.name].to_numpy()
        column = np.full(len(sides), None, dtype=object)
        for level, value_column in comparison.tf_levels.items():
            hit = levels == level
            if hit.any():
                keys = sides.cached(
                    ("tf_keys", value_column), lambda c=value_column: _tf_keys(sides.column(c), c)
                )
                left_keys = keys[sides.left[hit]]
                column[hit] = np.where(pd.isna(left_keys), keys[sides.right[hit]], left_keys)
        out[comparison.name] = column
    return pd.DataFrame(out)


def _tf_keys(values: np.ndarray, column: str) -> np.ndarray:
    """`_tf_key` of every value, computed once per distinct value."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    table = np.array([_tf_key(column, v) for v in uniques] + [None], dtype=object)
    return table[codes]


def compare_with_tf(
    left: pd.DataFrame, right: pd.DataFrame, cosine: np.ndarray | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Levels and TF values in one pass: what scoring needs."""
    return compare_sides_with_tf(Sides.aligned(left, right), cosine)


def compare_sides_with_tf(
    sides: Sides, cosine: np.ndarray | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    gamma = compare_sides(sides, cosine)
    return gamma, tf_values_sides(sides, gamma)


TF_COLUMNS: tuple[str, ...] = ("first_name", "last_name", "postcode", "city", "dob")


def term_frequencies(profiles: pd.DataFrame, columns: tuple[str, ...] = TF_COLUMNS) -> dict[str, pd.Series]:
    """Relative frequency of each value among profiles that have one (value -> share).

    Keys are value columns (as named in `Comparison.tf_levels`), counted on the same cleaned
    value `tf_values` reports, so lookups agree.
    """
    out: dict[str, pd.Series] = {}
    for column in columns:
        keys = pd.Series(_tf_keys(_column(profiles, column), column), dtype=object).dropna()
        out[column] = keys.value_counts(normalize=True)
    return out
