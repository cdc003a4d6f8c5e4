"""What tells two people apart, and when two records cannot be one person.

Person-level attributes are the ones a household does not share: the given name, the date of
birth, the national id and the generational suffix (Jr, Sr, II). The address, the landline, the
home IP, a family e-mail or a shared tablet are household-level: agreeing on them says "same
household", and disagreeing on a person-level attribute says "two people" whatever the household
evidence. The rules forgive what data entry does to one person's values: a one-digit or
transposed birth date, a one-edit national id, a typo, a nickname (mistyped too), an initial or a
swapped name.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from rapidfuzz.distance import OSA, JaroWinkler

from idr_pipeline.scoring.comparisons import handle_letters, name_letters, split_suffix
from idr_pipeline.standardize.nicknames import nickname_groups_forgiving_typo

CONFLICTING_NATIONAL_ID = "conflicting_national_id"
CONFLICTING_SUFFIX = "conflicting_suffix"
CONFLICTING_DOB = "conflicting_dob"
CONFLICTING_FIRST_NAME = "conflicting_first_name"
#: Given names this similar (Jaro-Winkler) may be one name mistyped; the scoring's lowest
#: fuzzy first-name level uses the same bound.
FIRST_NAME_SIMILARITY = 0.85


@dataclass(frozen=True, slots=True)
class PersonKey:
    """A record's person-level attributes, normalized for comparison; None where missing."""

    first: str | None
    last: str | None
    dob: str | None
    national_id: str | None
    suffix: str | None

    @property
    def carries_any(self) -> bool:
        return any(v is not None for v in (self.first, self.dob, self.national_id, self.suffix))


def _text(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    value = value.strip().lower()
    return value or None


#: Words that handles put before a surname and that are no given name ('thesmiths',
#: 'mr.jones', 'familyjones'): such a handle is the household's or a title's, not a person's.
NOT_GIVEN_NAMES = frozenset({
    "the", "mr", "mrs", "ms", "miss", "dr", "prof", "rev", "sir", "mister", "dear", "family", "fam",
    "team", "house", "home", "info", "contact", "hello", "its", "iam", "real", "official", "our", "my",
})  # fmt: skip


def given_name_in_email(email: object, last_name: object) -> str | None:
    """The given name that an e-mail handle spells before the record's own surname, or None.

    'james.vasquez', 'james_vasquez84' and 'jamesvasquez' under the surname Vasquez give 'james';
    'j.vasquez' and 'jvasquez' give the initial 'j'. The handle (digits at its end and a '+tag'
    dropped) must be exactly that: one given name of three letters or more, or one initial,
    then the surname, with or without a separator. Two letters ('jd', 'mr') are too often
    initials or titles to read as a name; the words of :data:`NOT_GIVEN_NAMES` are never one.
    Anything else (a surname alone, a nickname handle, the surname first) says nothing.
    """
    handle = handle_letters(email)
    surname = name_letters(split_suffix(last_name)[0] if isinstance(last_name, str) else None)
    if handle is None or len(surname) < 2 or not handle.endswith(surname):
        return None
    given = handle[: -len(surname)]
    if not given or len(given) == 2 or given in NOT_GIVEN_NAMES:
        return None
    return given


def person_key(
    first_name: object, last_name: object, dob: object, national_id: object, email: object = None
) -> PersonKey:
    """The record's person-level attributes; without a given name, the one its e-mail handle
    spells before its surname (:func:`given_name_in_email`) stands in."""
    last, suffix = split_suffix(last_name if isinstance(last_name, str) else None)
    first = _text(first_name)
    if first is not None:
        first = first.replace("-", " ").replace(".", " ").strip() or None
    if first is None:
        first = given_name_in_email(email, last_name)
    return PersonKey(
        first=first,
        last=_text(last),
        dob=_text(dob),
        national_id=_text(national_id),
        suffix=suffix.lower() if suffix else None,
    )


def clearly_different_dob(a: str, b: str) -> bool:
    """Two ISO dates that no data-entry slip turns into each other.

    Equal dates, one mistyped digit, two neighboring digits swapped, day and month transposed,
    or a year off by one with the same day and month are typos of one birthday; anything else
    is two people.
    """
    if a == b:
        return False
    if len(a) == len(b):
        differ = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
        if len(differ) == 1:
            return False  # one mistyped digit
        if (
            len(differ) == 2
            and differ[1] == differ[0] + 1
            and a[differ[0]] == b[differ[1]]
            and a[differ[1]] == b[differ[0]]
        ):
            return False  # two neighboring digits swapped
    ya, ma, da = a[:4], a[5:7], a[8:10]
    yb, mb, db = b[:4], b[5:7], b[8:10]
    if ya == yb and ma == db and da == mb:
        return False
    if ma == mb and da == db and ya.isdigit() and yb.isdigit() and abs(int(ya) - int(yb)) == 1:
        return False
    return True


def different_national_ids(a: str, b: str) -> bool:
    """Two national ids more than one edit apart: a typo is not a second person."""
    return a != b and OSA.distance(a, b) > 1


def _given_names_agree(a: str, b: str) -> bool:
    if a == b:
        return True
    token_a, token_b = a.split()[0], b.split()[0]
    if token_a == token_b:  # 'mary ann' / 'mary'
        return True
    if (len(token_a) == 1 or len(token_b) == 1) and token_a[0] == token_b[0]:  # 'j' / 'john'
        return True
    groups_a = nickname_groups_forgiving_typo(token_a)
    if groups_a and set(groups_a) & set(nickname_groups_forgiving_typo(token_b)):
        return True
    return JaroWinkler.similarity(a, b) >= FIRST_NAME_SIMILARITY


def first_names_compatible(x: PersonKey, y: PersonKey) -> bool:
    """Could the two given names be one person's: equal, a typo, a nickname, an initial, or
    the given and family names swapped or moved between the fields."""
    if x.first is None or y.first is None:
        return True
    if _given_names_agree(x.first, y.first):
        return True
    return (x.last is not None and x.last == y.first) or (y.last is not None and y.last == x.first)


def person_conflict(x: PersonKey, y: PersonKey) -> str | None:
    """Why the two records are two people, or None when nothing person-level says so.

    The national id outranks the rest: two records with one national id (up to a typo) are
    not told apart by a mistyped name or date, and two with different ones are two people.
    """
    if x.national_id and y.national_id:
        if different_national_ids(x.national_id, y.national_id):
            return CONFLICTING_NATIONAL_ID
        return None
    if x.suffix and y.suffix and x.suffix != y.suffix:
        return CONFLICTING_SUFFIX
    if x.dob and y.dob and clearly_different_dob(x.dob, y.dob):
        return CONFLICTING_DOB
    if not first_names_compatible(x, y):
        return CONFLICTING_FIRST_NAME
    return None


def could_be_one_corrupted_person(x: PersonKey, y: PersonKey, reason: str) -> bool:
    """May the model's own score overrule the conflict ``reason`` between two records?

    Only where data entry, not kinship, explains it: two national ids whose holders' name and
    date of birth fit one person (a re-keyed copy), or one exact date of birth under one family
    name with the given names apart (a given name replaced or mistyped beyond recognition; twins
    look the same, and are the price). Relatives at one address differ in their dates of birth,
    and a record without one gives no such reason.
    """
    if reason == CONFLICTING_NATIONAL_ID:
        x, y = replace(x, national_id=None), replace(y, national_id=None)
        rest = person_conflict(x, y)
        return rest is None or could_be_one_corrupted_person(x, y, rest)
    return (
        reason == CONFLICTING_FIRST_NAME
        and x.dob is not None
        and x.dob == y.dob
        and x.last is not None
        and y.last is not None
        and JaroWinkler.similarity(x.last, y.last) >= FIRST_NAME_SIMILARITY
    )


def canonical_order(key: PersonKey) -> tuple[str, ...]:
    """A total order of person keys, independent of where the records came from."""
    return tuple(v or "" for v in (key.first, key.last, key.dob, key.national_id, key.suffix))


def people_among(keys: list[PersonKey]) -> tuple[int, str | None]:
    """How many people the carriers of one identifier value are at least, told apart by their
    person-level attributes, and the first conflict that tells two of them apart.

    Each key joins the first group it conflicts with no member of; a new group starts otherwise.
    Keys that carry nothing person-level never start a group of their own.
    """
    groups: list[list[PersonKey]] = []
    first_reason: str | None = None
    for key in keys:
        if not key.carries_any:
            continue
        for group in groups:
            reasons = [person_conflict(key, member) for member in group]
            if not any(reasons):
                group.append(key)
                break
            first_reason = first_reason or next(r for r in reasons if r)
        else:
            groups.append([key])
    return max(len(groups), 1 if keys else 0), first_reason


@dataclass
class PersonSignatures:
    """Each row's person-level attributes as one integer code (-1: carries none), with the key
    of each code: computed once per frame and shared by every identifier judged on it."""

    codes: np.ndarray
    keys: list[PersonKey]

    @classmethod
    def of(
        cls, first_name: object, last_name: object, dob: object, national_id: object, email: object = None
    ) -> PersonSignatures:
        """``email``, where given, names the records without a given name (:func:`person_key`)."""
        frame = pd.DataFrame(
            {"first": first_name, "last": last_name, "dob": dob, "national_id": national_id}, dtype=object
        )
        if frame.empty:
            return cls(np.zeros(0, dtype=np.int64), [])
        if email is not None:
            frame["first"] = given_names_or_from_email(frame["first"], frame["last"], email)
        codes, uniques = pd.factorize(pd.MultiIndex.from_frame(frame.fillna("")))
        keys = [person_key(f or None, ln or None, d or None, n or None) for f, ln, d, n in uniques]
        carries = np.array([k.carries_any for k in keys] + [False])
        return cls(np.where(carries[codes], codes, -1), keys)


def given_names_or_from_email(first_name: pd.Series, last_name: pd.Series, email: object) -> pd.Series:
    """``first_name`` with each missing given name taken from the row's e-mail handle where it
    spells one (:func:`given_name_in_email`); computed only for those rows."""
    emails = pd.Series(email, index=first_name.index, dtype=object)
    missing = first_name.map(_text).isna() & emails.notna() & last_name.notna()
    if not missing.any():
        return first_name
    filled = first_name.copy()
    filled[missing] = [
        given_name_in_email(e, ln) for e, ln in zip(emails[missing], last_name[missing], strict=True)
    ]
    return filled


def people_per_value(
    value_codes: np.ndarray, signatures: PersonSignatures, judge_national_id: bool = True
) -> tuple[np.ndarray, dict[int, str]]:
    """Per value code (0..max), :func:`people_among` its carriers (rows with that code; -1 is no
    value), and the conflict reason of each value carried by several people.

    Only values whose carriers hold two or more distinct person-level attribute sets are judged
    in Python; the rest are one person or nobody. Each value's keys are judged in
    :func:`canonical_order`, so the count does not depend on how the rows were batched.
    ``judge_national_id=False`` leaves the carriers' national ids out: the way to judge national
    id values themselves, which every carrier of one value shares by definition.
    """
    n_values = int(value_codes.max()) + 1 if len(value_codes) else 0
    people = np.zeros(n_values, dtype=np.int64)
    people[np.unique(value_codes[value_codes >= 0])] = 1
    both = np.flatnonzero((value_codes >= 0) & (signatures.codes >= 0))
    reasons: dict[int, str] = {}
    if not len(both):
        return people, reasons
    width = np.int64(len(signatures.keys) + 1)
    pairs = np.unique(value_codes[both].astype(np.int64) * width + signatures.codes[both])
    values, signature = pairs // width, pairs % width
    starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
    sizes = np.diff(np.r_[starts, len(values)])
    for start, size in zip(starts[sizes > 1].tolist(), sizes[sizes > 1].tolist(), strict=True):
        keys = {signatures.keys[c] for c in signature[start : start + size].tolist()}
        if not judge_national_id:
            keys = {replace(k, national_id=None) for k in keys}
        keys = sorted(keys, key=canonical_order)
        count, reason = people_among(keys)
        value = int(values[start])
        people[value] = count
        if reason is not None and count > 1:
            reasons[value] = reason
    return people, reasons
