"""Candidate pairs from exact blocking keys, in pandas.

Two families of keys. Shared identifiers are the same evidence ``graph/edges.py`` links on,
but here they only propose pairs: the probabilistic model scores them, so a household phone
becomes a pair to judge rather than a merge. Classic blocking rules then catch the duplicates
that share no identifier at all (new e-mail, new phone) from name, address and birth-date
values that survive the usual changes of a life: marriage changes a surname, a move changes a
postcode, a typo changes one digit, rarely all at once.

Why these rules (measured with ``benchmarks/blocking_report.py`` on generated data, 10k and
100k people): sources fill different fields, so the pairs blocking misses are mostly records
that share *only* a name, or a name on one side and an e-mail address built from it on the
other ('sara.oneill@' vs Sara O'Neill). The full-name rule reads given and surname out of the
e-mail local part for exactly that, and compares given names through the nickname table; the
e-mail-initial rule pairs 'jsmith@' with J. Smith without pairing every J. Smith with every
other. Rules that propose many pairs but no true pair another rule misses (surname + birth
year, first initial + postcode) are left out. The exact birth date rule only feeds EM training
(``BlockingRule.predicts=False``), since ``fellegi_sunter.DEFAULT_SESSIONS`` needs every
same-date pair; narrower birth-date rules are scored instead. The street rule stays partly
because a training session reads it.

Every rule has a bucket cap. A key shared by more records than that is a placeholder, a
system default or a very common name in a big block; enumerating it would cost s^2/2 pairs
for little recall, so it's skipped and counted, and the report shows what the cap cost.
The candidates stage runs these rules over the clean profiles in the driver
(``candidates/union.py``), and the API applies the single-record rules to one query
(``api/resolve.py``).
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import pandas as pd

from idr_pipeline.candidates.buckets import (
    bucket_pairs,
    code_pairs_frame,
    cross_bucket_pairs,
    ragged_arange,
    record_ranks,
    sorted_unique,
)
from idr_pipeline.standardize.nicknames import NICKNAME_GROUPS, canonical_given_name

KeyFunction = Callable[[pd.DataFrame], pd.Series]

IDENTIFIER_MAX_BUCKET = 100
BLOCK_MAX_BUCKET = 100
# A handle's initial-and-surname partners: beyond a few, the handle cannot say which one it is.
HANDLE_PARTNER_MAX_BUCKET = 20
KEY_SEPARATOR = "\u241f"


@dataclass(frozen=True)
class BlockingRule:
    """One blocking condition: records with equal keys become candidate pairs.

    ``multi_key`` rules may give a record several keys (a name read from its name fields and
    another read from its e-mail): their key function returns a Series indexed by row
    *position*, repeats allowed, instead of one value per row. With ``partner_key`` the rule is
    two-sided: only a record keyed by ``key`` and one keyed by ``partner_key`` pair up.

    A rule with ``predicts=False`` only trains: its pairs are in the pool the EM sample is
    drawn from (so a training session on its condition sees every pair meeting it) but are not
    scored. That is Splink's split between training and prediction blocking rules, for a
    condition too broad to score at scale whose matches narrower rules already find.
    """

    name: str
    purpose: str
    key: KeyFunction  # profiles -> one key string per row, <NA> where the rule doesn't apply
    max_bucket: int
    multi_key: bool = False
    partner_key: KeyFunction | None = None
    predicts: bool = True


Step = Callable[[pd.Series], pd.Series]
_Part = TypeVar("_Part")
# Key parts computed during one deterministic_pairs call, by (part, frame, args): see _shared_part.
_PARTS: ContextVar[dict[tuple[object, ...], object] | None] = ContextVar("_PARTS", default=None)


@contextmanager
def _sharing_parts() -> Iterator[None]:
    token = _PARTS.set({})
    try:
        yield
    finally:
        _PARTS.reset(token)


def _shared_part(fn: Callable[..., _Part]) -> Callable[..., _Part]:
    """Within one ``deterministic_pairs`` call, compute this key part once per frame (and args).

    Surname, given name, birth date, postcode and e-mail handle each feed several rules, and
    first name three parts; computed per rule, the same work would run up to six times over
    the whole frame. Outside a call (the API keys one query at a time) nothing is kept.
    Callers must not modify the result.
    """

    @functools.wraps(fn)
    def part(profiles: pd.DataFrame, *args: str) -> _Part:
        memo = _PARTS.get()
        if memo is None:
            return fn(profiles, *args)
        key = (fn.__name__, id(profiles), *args)
        if key not in memo:
            memo[key] = fn(profiles, *args)
        return memo[key]  # type: ignore[return-value]

    return part


@dataclass(frozen=True)
class _Coded:
    """A key part as integer codes into its distinct values: -1 where missing.

    Blocking only asks which records share a key, so a key of several parts is the tuple of
    their codes, never a string: concatenating the parts' strings, checking them for missing
    values and factorizing the result again would cost more than finding the pairs.
    """

    codes: np.ndarray  # int64, one per row (or per key entry of a multi-key rule)
    labels: np.ndarray  # object array of distinct non-empty strings that ``codes`` index


@dataclass(frozen=True)
class _Keys:
    """A rule's keys: the tuple of ``parts`` at row ``positions`` (repeated for multi-keys)."""

    positions: np.ndarray
    parts: tuple[_Coded, ...]


def _taken(mapping: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """``mapping[codes]``, keeping -1 (missing) as -1."""
    return np.append(mapping.astype(np.int64), np.int64(-1))[codes]


def _relabel(part: _Coded, step: Step) -> _Coded:
    """``step`` over the distinct values only, taken back to every row; empty means missing.

    Names, postcodes and birth dates repeat across records, so the string work runs once per
    distinct value rather than once per row. ``part.labels`` may repeat a value (see
    ``_email_local``); the result's labels are distinct.
    """
    done = step(pd.Series(part.labels, dtype=object).astype("string"))
    codes, labels = pd.factorize(done.mask(done == ""))
    return _Coded(_taken(codes, part.codes), np.asarray(labels, dtype=object))


def _unified(a: _Coded, b: _Coded) -> tuple[_Coded, _Coded]:
    """``a`` and ``b`` over one set of labels, so equal values have equal codes."""
    codes, labels = pd.factorize(np.concatenate([a.labels, b.labels]))
    labels = np.asarray(labels, dtype=object)
    # a.labels are distinct, so they keep their codes 0..len - 1
    return _Coded(a.codes, labels), _Coded(_taken(codes[len(a.labels) :], b.codes), labels)


def _combined(parts: tuple[_Coded, ...]) -> np.ndarray:
    """One int64 per key, equal exactly when every part's code is; -1 when any part is missing,
    so a rule never blocks on half a key. ('ab', 'c') and ('a', 'bc') stay apart."""
    code = parts[0].codes.astype(np.int64)
    bound = len(parts[0].labels)
    for p in parts[1:]:
        n = max(len(p.labels), 1)
        if bound * n >= 2**62:  # re-number the keys seen so far before the product overflows
            dense, uniques = pd.factorize(code[code >= 0])
            code = code.copy()
            code[code >= 0] = dense
            bound = len(uniques)
        code = np.where((code < 0) | (p.codes < 0), np.int64(-1), code * n + p.codes)
        bound *= n
    return code


def _key_strings(keys: _Keys, index: pd.Index) -> pd.Series:
    """The keys as the strings the API hashes: parts joined by ``KEY_SEPARATOR``, <NA> when any is missing."""
    present = np.ones(len(keys.positions), dtype=bool)
    for p in keys.parts:
        present &= p.codes >= 0
    joined: np.ndarray | None = None
    for p in keys.parts:
        values = p.labels[p.codes[present]] if len(p.labels) else np.zeros(0, dtype=object)
        joined = values if joined is None else joined + KEY_SEPARATOR + values
    out = np.full(len(keys.positions), pd.NA, dtype=object)
    out[present] = joined
    return pd.Series(out, index=index, dtype="string")


class _CodedKey:
    """A key function (profiles -> key strings) that can also give its keys as integer codes.

    ``deterministic_pairs`` reads ``keys``; calling it gives the strings ``rule.key`` always
    gave (the API hashes them). ``positional``: the strings are indexed by row position
    (multi-key rules and their partners), else by the frame's index.
    """

    def __init__(self, keys: Callable[[pd.DataFrame], _Keys], positional: bool = False) -> None:
        functools.update_wrapper(self, keys)
        self.keys = keys
        self.positional = positional

    def __call__(self, profiles: pd.DataFrame) -> pd.Series:
        keys = self.keys(profiles)
        index = pd.Index(keys.positions) if self.positional else profiles.index
        return _key_strings(keys, index)


def _row_parts(*parts: Callable[[pd.DataFrame], _Coded]) -> _CodedKey:
    """The key of one row: its parts together."""

    def keys(profiles: pd.DataFrame) -> _Keys:
        return _Keys(np.arange(len(profiles), dtype=np.int64), tuple(p(profiles) for p in parts))

    return _CodedKey(keys)


@_shared_part
def _lower(profiles: pd.DataFrame, col: str) -> _Coded:
    """``col`` stripped and lower-cased; empty means missing. Every other part starts here, so
    each column is factorized once."""
    if col not in profiles.columns:
        return _Coded(np.full(len(profiles), -1, dtype=np.int64), np.zeros(0, dtype=object))
    codes, uniques = pd.factorize(profiles[col])
    raw = _Coded(codes.astype(np.int64), np.asarray(uniques, dtype=object))
    if all(isinstance(v, str) for v in raw.labels):
        # str methods in a comprehension: lighter than pandas' string accessor on plain str values
        return _relabel_each(raw, lambda v: v.strip().lower())
    return _relabel(raw, lambda s: s.str.strip().str.lower())  # astype("string") spells the rest


def _relabel_each(part: _Coded, fn: Callable[[str], str]) -> _Coded:
    """``_relabel`` with a function of one str value, for labels that are all str."""
    done = np.array([fn(v) for v in part.labels], dtype=object)
    done[done == ""] = None
    codes, labels = pd.factorize(done)
    return _Coded(_taken(codes, part.codes), np.asarray(labels, dtype=object))


def _text(profiles: pd.DataFrame, col: str, step: Step | None = None) -> _Coded:
    """``col`` stripped and lower-cased, then through ``step``; empty means missing."""
    part = _lower(profiles, col)
    return part if step is None else _relabel(part, step)


@_shared_part
def _compact(profiles: pd.DataFrame, col: str) -> _Coded:
    """Postcodes and ids without spaces and dashes, as the comparisons read them."""
    return _text(profiles, col, lambda s: s.str.replace(r"[\s-]", "", regex=True))


@_shared_part
def _first_initial(profiles: pd.DataFrame) -> _Coded:
    return _text(profiles, "first_name", lambda s: s.str.replace(r"[^a-z]", "", regex=True).str[:1])


@_shared_part
def _dob(profiles: pd.DataFrame) -> _Coded:
    # only full ISO dates, so "year" below is a year
    return _text(profiles, "dob", lambda s: s.mask(s.str.len() < 10))


def _column(col: str) -> _CodedKey:
    return _row_parts(lambda df: _text(df, col))


def _street(profiles: pd.DataFrame) -> _Coded:
    """Street with runs of spaces folded: the comparison's 'same street' without its fuzz."""
    return _text(profiles, "street", lambda s: s.str.replace(r"\s+", " ", regex=True))


GENERATIONAL_SUFFIX = r"\s+(?:jr|sr|ii|iii|iv)\.?$"


@_shared_part
def _surname(profiles: pd.DataFrame) -> _Coded:
    """Surname letters without a generational suffix, so 'Smith Jr' keys with 'Smith'."""
    return _text(
        profiles,
        "last_name",
        lambda s: s.str.replace(GENERATIONAL_SUFFIX, "", regex=True).str.replace(r"[^a-z]", "", regex=True),
    )


def _canonical(values: pd.Series) -> pd.Series:
    """Nickname-canonical given name ('bob' -> 'robert'), letters only, computed per distinct value."""
    distinct = values.dropna().unique()
    table = {v: re.sub(r"[^a-z]", "", canonical_given_name(v)) or None for v in distinct}
    return values.map(table).astype("string")


@_shared_part
def _given(profiles: pd.DataFrame) -> _Coded:
    return _text(profiles, "first_name", _canonical)


@_shared_part
def _given_initial(profiles: pd.DataFrame) -> _Coded:
    return _relabel(_given(profiles), lambda s: s.str[:1])


@_shared_part
def _surname_initial(profiles: pd.DataFrame) -> _Coded:
    return _relabel(_surname(profiles), lambda s: s.str[:1])


def _postcode(profiles: pd.DataFrame) -> _Coded:
    return _compact(profiles, "postcode")


@_shared_part
def _email_local(profiles: pd.DataFrame) -> _Coded:
    """Local part of the match key (gmail dots and +tags already folded), else of the raw e-mail."""
    key, email = _lower(profiles, "email_key"), _lower(profiles, "email")
    # The raw e-mails of rows without a key, labeled after the key's (a value in both is
    # mapped twice, then merged); only those, since each handle is read once per rule.
    fallback = np.where(key.codes < 0, email.codes, -1)
    used = np.flatnonzero(np.bincount(fallback[fallback >= 0], minlength=len(email.labels)))
    relabel = np.full(len(email.labels), -1, dtype=np.int64)
    relabel[used] = np.arange(len(used)) + len(key.labels)
    filled = np.where(key.codes >= 0, key.codes, _taken(relabel, fallback))
    both = _Coded(filled, np.concatenate([key.labels, email.labels[used]]))
    # str.partition per distinct value: pandas' str.split(n=1).str[0] would build a list per value.
    return _relabel_each(both, lambda v: v.partition("@")[0].partition("+")[0])


@_shared_part
def _handle_words(profiles: pd.DataFrame) -> list[list[str]]:
    """The letter runs of each distinct handle (``_email_local`` labels), read by two rules."""
    return [_LETTERS.findall(v) for v in _email_local(profiles).labels]


# A handle's words: its runs of letters (findall, not a split on the rest and a filter of empty
# pieces: the same words, found once per handle for both handle rules).
_LETTERS = re.compile(r"[a-z]+")
_MIN_PART = 2


def email_names(local: str, given: frozenset[str], surnames: frozenset[str]) -> set[tuple[str, str]]:
    """(given, surname) readings of an e-mail handle; empty when it reads as no name.

    Separated handles ('sara.oneill', 'oneill_sara77') give both orders, since a handle does not
    say which word is the surname and a wrong reading only meets records of that wrong name.
    A run-together handle ('saraoneill') is split wherever both halves are names seen in the
    data being blocked (or the nickname table): guessing splits of unknown words would key
    random handles ('beachriver') as names.
    """
    return _names_of_words(_LETTERS.findall(local), given, surnames)


def _names_of_words(
    words: list[str], given: frozenset[str], surnames: frozenset[str]
) -> set[tuple[str, str]]:
    """``email_names`` of a handle already split into its letter runs."""
    if len(words) >= 2:
        a, b = words[0], words[1]
        if len(a) >= _MIN_PART and len(b) >= _MIN_PART:
            return {(a, b), (b, a)}
        return set()
    if len(words) != 1:
        return set()
    w = words[0]
    out = set()
    for i in range(_MIN_PART, len(w) - _MIN_PART + 1):
        head, tail = w[:i], w[i:]
        if head in given and tail in surnames:
            out.add((head, tail))
        if head in surnames and tail in given:
            out.add((tail, head))
    return out


@_shared_part
def _name_vocabulary(profiles: pd.DataFrame) -> tuple[frozenset[str], frozenset[str]]:
    # Over the distinct names, not per row: the regex and the set building run once per name.
    first = pd.Series(_text(profiles, "first_name").labels, dtype=object).astype("string")
    first = first.str.replace(r"[^a-z]", "", regex=True)
    given = frozenset(first[first.str.len() >= _MIN_PART]) | frozenset(NICKNAME_GROUPS)
    last = pd.Series(_surname(profiles).labels, dtype=object).astype("string")
    return given, frozenset(last[last.str.len() >= _MIN_PART])


def _handle_keys(profiles: pd.DataFrame, read: Callable[[list[str]], list[tuple[str, str]]]) -> _Keys:
    """Keys read from each row's e-mail handle, a row getting every reading of its handle;
    ``read`` runs once per distinct handle, on its letter runs."""
    local = _email_local(profiles)
    per_handle = [read(words) for words in _handle_words(profiles)]
    counts = np.fromiter((len(k) for k in per_handle), dtype=np.int64, count=len(per_handle))
    flat = [k for keys in per_handle for k in keys]
    rows = np.flatnonzero(local.codes >= 0)
    handle = local.codes[rows]
    per_row = counts[handle]
    taken = np.repeat((np.cumsum(counts) - counts)[handle], per_row) + ragged_arange(per_row)
    parts = []
    for j in range(2):
        codes, labels = pd.factorize(np.array([k[j] for k in flat], dtype=object))
        parts.append(_Coded(codes.astype(np.int64)[taken], np.asarray(labels, dtype=object)))
    return _Keys(np.repeat(rows, per_row), tuple(parts))


def _full_name_keys(profiles: pd.DataFrame) -> _Keys:
    """Canonical given name + surname from the name fields, and every name reading of the e-mail.

    Positional multi-key: a record with a name and a 'first.last@' address has up to three keys,
    and meets a record of another source that has only one of them.
    """
    given, surname = _given(profiles), _surname(profiles)
    named = np.flatnonzero((given.codes >= 0) & (surname.codes >= 0))
    vocabulary, surnames = _name_vocabulary(profiles)
    canon: dict[str, str] = {}

    def read(words: list[str]) -> list[tuple[str, str]]:
        keys = []
        for g, s in _names_of_words(words, vocabulary, surnames):
            if g not in canon:
                canon[g] = re.sub(r"[^a-z]", "", canonical_given_name(g)) or g
            keys.append((canon[g], s))
        return keys

    handles = _handle_keys(profiles, read)
    parts = []
    for field, from_handle in zip((given, surname), handles.parts, strict=True):
        a, b = _unified(_Coded(field.codes[named], field.labels), from_handle)
        parts.append(_Coded(np.concatenate([a.codes, b.codes]), a.labels))
    return _Keys(np.concatenate([named, handles.positions]), tuple(parts))


full_name_keys = _CodedKey(_full_name_keys, positional=True)


def _email_initial_keys(profiles: pd.DataFrame) -> _Keys:
    """Initial + surname read from handles like 'jsmith' or 'j.smith' (surname seen in the data)."""
    _, surnames = _name_vocabulary(profiles)

    def read(words: list[str]) -> list[tuple[str, str]]:
        if len(words) >= 2 and len(words[0]) == 1 and len(words[1]) >= _MIN_PART:
            return [(words[0], words[1])]
        if len(words) == 1 and len(words[0]) > _MIN_PART + 1 and words[0][1:] in surnames:
            return [(words[0][0], words[0][1:])]
        return []

    return _handle_keys(profiles, read)


email_initial_keys = _CodedKey(_email_initial_keys, positional=True)


def _initial_surname_keys(profiles: pd.DataFrame) -> _Keys:
    """First initial + surname from the name fields, positional (partner of email_initial_keys)."""
    return _Keys(np.arange(len(profiles), dtype=np.int64), (_first_initial(profiles), _surname(profiles)))


initial_surname_keys = _CodedKey(_initial_surname_keys, positional=True)


DEFAULT_RULES: tuple[BlockingRule, ...] = (
    BlockingRule(
        "email_key",
        "same mailbox (gmail dots and +tags removed): the strongest personal identifier",
        _column("email_key"),
        IDENTIFIER_MAX_BUCKET,
    ),
    BlockingRule(
        "phone",
        "same E.164 number: one person, or a household the model must tell apart",
        _column("phone"),
        IDENTIFIER_MAX_BUCKET,
    ),
    BlockingRule(
        "national_id",
        "same government id: near certain, unless mistyped into someone else's",
        _row_parts(lambda df: _compact(df, "national_id")),
        IDENTIFIER_MAX_BUCKET,
    ),
    BlockingRule(
        "device_id",
        "same device: one person, or a shared tablet",
        _column("device_id"),
        IDENTIFIER_MAX_BUCKET,
    ),
    BlockingRule(
        "anonymous_id",
        "same analytics/browser id: the app and web sources carry it for one person, often "
        "when neither has a name",
        _column("anonymous_id"),
        IDENTIFIER_MAX_BUCKET,
    ),
    BlockingRule(
        "source_customer",
        "same customer id in one source under two record ids: the source says one customer",
        _row_parts(lambda df: _text(df, "source"), lambda df: _text(df, "source_customer_id")),
        IDENTIFIER_MAX_BUCKET,
    ),
    BlockingRule(
        "dob",
        "same full birth date: trains the 'exact dob' EM session, which needs every pair with "
        "one birth date. Not scored: at a million records it proposed 5.2M pairs no other rule "
        "did, 0.07% of them true; the four rules below find all but 59 of those true pairs the "
        "model scores above 0.5 from 0.9M pairs, and on FEBRL3 all but one of its true pairs",
        _row_parts(_dob),
        BLOCK_MAX_BUCKET,
        predicts=False,
    ),
    BlockingRule(
        "dob_given_initial",
        "same birth date and (nickname-canonical) given-name initial: a surname change and a move at once",
        _row_parts(_dob, _given_initial),
        BLOCK_MAX_BUCKET,
    ),
    BlockingRule(
        "dob_surname_initial",
        "same birth date and surname initial: a new given-name spelling and a move at once",
        _row_parts(_dob, _surname_initial),
        BLOCK_MAX_BUCKET,
    ),
    BlockingRule(
        "dob_swapped_initials",
        "same birth date, one record's first-name initial the other's surname initial: given "
        "name and surname swapped between sources (the FEBRL duplicates do it), which the two "
        "rules above miss whenever the two names start differently",
        _row_parts(_dob, _first_initial),
        BLOCK_MAX_BUCKET,
        partner_key=_row_parts(_dob, _surname_initial),
    ),
    BlockingRule(
        "dob_postcode",
        "same birth date at the same postcode: both names changed or mistyped",
        _row_parts(_dob, _postcode),
        BLOCK_MAX_BUCKET,
    ),
    BlockingRule(
        "street",
        "same street line: a new e-mail and phone at an old address; also makes 'same street "
        "and postcode' a valid EM training session",
        _row_parts(_street),
        BLOCK_MAX_BUCKET,
    ),
    BlockingRule(
        "surname_postcode",
        "same surname at the same postcode: a nickname or typo in the given name, no shared identifier",
        _row_parts(_surname, _postcode),
        BLOCK_MAX_BUCKET,
    ),
    BlockingRule(
        "given_name_postcode",
        "same (nickname-canonical) given name at the same postcode: catches surname changes "
        "and surname typos of people who haven't moved",
        _row_parts(_given, _postcode),
        BLOCK_MAX_BUCKET,
    ),
    BlockingRule(
        "full_name",
        "same canonical given name and surname, from the name fields or read from an e-mail "
        "handle: the only link between sources that share no other field",
        full_name_keys,
        BLOCK_MAX_BUCKET,
        multi_key=True,
    ),
    BlockingRule(
        "email_initial_surname",
        "handle 'jsmith' against a J. Smith of another source; two-sided so J. Smiths are not "
        "all paired with each other. Capped at 20 J. Smiths per handle: at a million records "
        "the cap of 100 proposed 2.8M pairs no other rule did, for 276 true pairs the model "
        "scores above 0.5; at 20, 0.17M pairs for 77",
        email_initial_keys,
        HANDLE_PARTNER_MAX_BUCKET,
        multi_key=True,
        partner_key=initial_surname_keys,
    ),
)


@dataclass(frozen=True)
class DeterministicResult:
    counts: pd.DataFrame  # one row per rule, see deterministic_pairs
    codes: np.ndarray  # the union over the predicting rules, as sorted lo * n + hi over record_ranks
    ids_by_rank: np.ndarray  # record ids in rank order, which ``codes`` index
    training_codes: np.ndarray  # sorted codes of every rule's pairs, training-only rules included

    @functools.cached_property
    def pairs(self) -> pd.DataFrame:
        """record_id_l, record_id_r of ``codes``: spelled out only when read (a report), since
        ``idr resolve`` needs only their count, and millions of pairs of id strings are slow to
        build."""
        return code_pairs_frame(self.codes, self.ids_by_rank)


def _row_keys(fn: KeyFunction, profiles: pd.DataFrame, multi: bool) -> tuple[np.ndarray, np.ndarray]:
    """(row positions, key strings) of the rows a key function applies to."""
    key = fn(profiles)
    if multi:
        pos = np.asarray(key.index, dtype=np.int64)
    else:
        pos = np.arange(len(key), dtype=np.int64)
    has = key.notna().to_numpy()
    return pos[has], key.to_numpy(dtype=object)[has]


Keyed = tuple[np.ndarray, np.ndarray]  # (row positions, int64 key codes) of the keyed rows


def _rule_codes(rule: BlockingRule, profiles: pd.DataFrame) -> tuple[Keyed, Keyed | None]:
    """The rule's keyed rows with integer keys, and its partner side's in the same code space.

    Keys of the module's own rules are built as codes (see ``_Coded``); any other key function
    gives strings, factorized here.
    """
    if isinstance(rule.key, _CodedKey) and isinstance(rule.partner_key, _CodedKey | None):
        a = rule.key.keys(profiles)
        if rule.partner_key is None:
            return _present(a.positions, _combined(a.parts)), None
        b = rule.partner_key.keys(profiles)
        shared = [_unified(x, y) for x, y in zip(a.parts, b.parts, strict=True)]
        return (
            _present(a.positions, _combined(tuple(x for x, _ in shared))),
            _present(b.positions, _combined(tuple(y for _, y in shared))),
        )
    pos, keys = _row_keys(rule.key, profiles, rule.multi_key)
    if rule.partner_key is None:
        codes, _ = pd.factorize(keys)
        return (pos, codes.astype(np.int64)), None
    pos_b, keys_b = _row_keys(rule.partner_key, profiles, rule.multi_key)
    codes, _ = pd.factorize(np.concatenate([keys, keys_b]))
    codes = codes.astype(np.int64)
    return (pos, codes[: len(keys)]), (pos_b, codes[len(keys) :])


def _present(positions: np.ndarray, codes: np.ndarray) -> Keyed:
    has = codes >= 0
    return positions[has], codes[has]


def deterministic_pairs(
    profiles: pd.DataFrame, rules: tuple[BlockingRule, ...] = DEFAULT_RULES
) -> DeterministicResult:
    """Union of the rules' pairs, and per rule what it contributed and what its cap skipped.

    counts columns: rule, keyed_records (rows the rule applies to), buckets (keys with two or
    more records), pairs (distinct pairs of this rule alone), new_pairs (not proposed by an
    earlier rule, so the order of ``rules`` reads as "what each rule adds"), skipped_buckets,
    skipped_records, largest_bucket, max_bucket, predicts, seconds.
    """
    ranks, ids_by_rank = record_ranks(profiles["record_id"])
    n = len(ranks)
    # The unions so far, kept sorted: each rule's codes are looked up in one array, and its new
    # codes merged in (a merge of two sorted runs, not a sort), so no rule is looked up in every
    # earlier rule's part and nothing is sorted again at the end.
    empty = np.zeros(0, dtype=np.int64)
    training = empty  # every rule's pairs, training-only rules included
    union = empty  # the predicting rules' pairs
    rows = []
    with _sharing_parts():
        for rule in rules:
            t0 = time.perf_counter()
            (pos, codes), partner = _rule_codes(rule, profiles)
            if partner is None:
                lo, hi, st = bucket_pairs(codes, ranks[pos], rule.max_bucket)
            else:
                pos_b, codes_b = partner
                lo, hi, st = cross_bucket_pairs(codes, ranks[pos], codes_b, ranks[pos_b], rule.max_bucket)
            # Rows keyed at least once: a bincount, not a sort of the (multi-key) positions.
            keyed = int(np.count_nonzero(np.bincount(pos))) if len(pos) else 0
            code = sorted_unique(lo * n + hi)
            seen = _in_sorted(code, training)
            new = code[~seen]
            training = merge_disjoint_sorted(training, new)
            if rule.predicts:
                # the union is within training: only codes seen there can be in it (for the broad
                # rules a small share of their codes), so the rest skip the second lookup
                in_union = seen.copy()
                in_union[seen] = _in_sorted(code[seen], union)
                union = merge_disjoint_sorted(union, code[~in_union])
            rows.append(
                {
                    "rule": rule.name,
                    "keyed_records": keyed,
                    "buckets": st.buckets,
                    "pairs": len(code),
                    "new_pairs": len(new),
                    "skipped_buckets": st.skipped_buckets,
                    "skipped_records": st.skipped_records,
                    "largest_bucket": st.largest_bucket,
                    "max_bucket": rule.max_bucket,
                    "predicts": rule.predicts,
                    "seconds": round(time.perf_counter() - t0, 3),
                }
            )
    return DeterministicResult(pd.DataFrame(rows), union, ids_by_rank, training)


def _in_sorted(codes: np.ndarray, sorted_union: np.ndarray) -> np.ndarray:
    """Which of ``codes`` occur in ``sorted_union``."""
    if len(sorted_union) == 0 or len(codes) == 0:
        return np.zeros(len(codes), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_union, codes), len(sorted_union) - 1)
    return sorted_union[at] == codes


def merge_disjoint_sorted(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The sorted union of two sorted arrays with no value in common.

    A stable sort is numpy's timsort for int64, which finds the two runs and merges them in
    linear time; a quicksort would start from scratch.
    """
    if len(a) == 0 or len(b) == 0:
        return b if len(a) == 0 else a
    return np.sort(np.concatenate([a, b]), kind="stable")
