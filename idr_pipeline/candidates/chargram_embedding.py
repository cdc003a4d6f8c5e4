"""Profile embeddings from hashed character 3-grams: no model, no training data, one numpy pass.

A profile text (`embedding.profile_text`) becomes the counts of its character 3-grams, each
3-gram hashed to one of `dim` coordinates with a hashed sign (+1 or -1), then scaled to unit
length. Signed feature hashing is a sparse random projection of the exact 3-gram count vector,
so the inner product of two such vectors estimates the cosine of the two texts' 3-gram profiles;
the estimate's noise shrinks with `dim`. This is the subword half of fastText without the
learned vectors, and it is what record linkage needs from an embedding: `Kathrine Tompson` and
`Katherine Thompson` share most of their 3-grams, whereas a word-piece model sees different
tokens. `benchmarks/embedding_speed.py` measures it against MiniLM, int8 ONNX MiniLM and a
static model distilled from MiniLM, for speed and for the true pairs it proposes.

Text handling, applied to the whole batch at once on its UTF-8 bytes:

* lower-cased; every ASCII byte that is not a letter or digit becomes a space, runs of spaces
  become one, and each text is padded with one space at either end, so a word's first and last
  letters form their own 3-grams (` ka`, `en `) and punctuation such as the `, ` between fields
  adds no similarity between strangers;
* bytes of non-ASCII characters are kept as they are, so `José` and `Jose` share the 3-grams
  that do not touch the accent;
* 3-grams run across word boundaries (`n t` in `kathrine tompson`), which keeps a little of
  the word order.

The vectors depend only on the text, `dim` and `ENCODER_VERSION`, never on the other texts in
the batch (there is no corpus-fitted IDF), so a vector can be cached under the hash of its
text and `ENCODER_ID` and reused on the next run; `profile_encoders.encode_reusing` does that.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

__all__ = ["DEFAULT_DIM", "ENCODER_ID", "ENCODER_VERSION", "encode"]

DEFAULT_DIM = 256
# Bump when anything that changes a vector changes (normalization, hashing, n-gram length):
# it is part of every content hash, so cached vectors of the old encoder are never reused.
ENCODER_VERSION = 1
ENCODER_ID = f"chargram3-v{ENCODER_VERSION}"
# Texts per numpy pass: bounds the (texts, dim) float64 accumulator, not the output.
_CHUNK = 20_000
_SEPARATOR = 0  # NUL never occurs in profile text; it ends one text and starts the next
_SPACE = 0x20
_MIX_1 = np.uint64(0x9E3779B97F4A7C15)
_MIX_2 = np.uint64(0xBF58476D1CE4E5B9)


def _byte_map() -> np.ndarray:
    """ASCII letters and digits kept, every other ASCII byte a space, non-ASCII bytes kept."""
    table = np.arange(256, dtype=np.uint8)
    ascii_other = [b for b in range(128) if not chr(b).isalnum()]
    table[ascii_other] = _SPACE
    table[_SEPARATOR] = _SEPARATOR
    return table


_BYTE_MAP = _byte_map()


def _normalized_bytes(texts: Sequence[str]) -> np.ndarray:
    """The texts as one byte array: ` text ` blocks separated by NUL, spaces collapsed."""
    joined = "\x00".join(texts).lower().encode("utf-8")
    raw = _BYTE_MAP[np.frombuffer(joined, dtype=np.uint8)]
    # Pad every text with spaces: each separator becomes ' \0 ' and the two ends get a ' '.
    is_sep = raw == _SEPARATOR
    if int(is_sep.sum()) != len(texts) - 1:
        raise ValueError("profile texts must not contain NUL characters")
    padded = np.full(len(raw) + 2 * len(texts), _SPACE, dtype=np.uint8)
    padded[np.arange(len(raw)) + 1 + 2 * np.cumsum(is_sep) - is_sep] = raw
    # Collapse runs of spaces to one.
    keep = np.ones(len(padded), dtype=bool)
    keep[1:] = ~((padded[1:] == _SPACE) & (padded[:-1] == _SPACE))
    return padded[keep]


def _encode_chunk(texts: Sequence[str], dim: int) -> np.ndarray:
    data = _normalized_bytes(texts).astype(np.uint64)
    if len(data) < 3:
        return np.zeros((len(texts), dim), dtype=np.float32)
    is_sep = data == _SEPARATOR
    row = np.cumsum(is_sep)[:-2]
    codes = data[:-2] | (data[1:-1] << np.uint64(8)) | (data[2:] << np.uint64(16))
    valid = ~(is_sep[:-2] | is_sep[1:-1] | is_sep[2:])
    codes, row = codes[valid], row[valid]
    # splitmix64-style finalizer: every bit of the 3-gram reaches the bucket and the sign.
    h = codes * _MIX_1
    h ^= h >> np.uint64(29)
    h *= _MIX_2
    h ^= h >> np.uint64(32)
    bucket = (h % np.uint64(dim)).astype(np.int64)
    sign = 1.0 - 2.0 * (h >> np.uint64(63)).astype(np.float64)
    flat = np.bincount(row.astype(np.int64) * dim + bucket, weights=sign, minlength=len(texts) * dim)
    counts = flat.reshape(len(texts), dim)
    norms = np.sqrt(np.einsum("ij,ij->i", counts, counts))[:, None]
    np.divide(counts, norms, out=counts, where=norms > 0)
    return counts.astype(np.float32)


def encode(texts: Sequence[str], dim: int = DEFAULT_DIM, threads: int = 1) -> np.ndarray:
    """Embeddings as a contiguous float32 (n, dim) array with unit rows, so inner product = cosine.

    Same contract as `embedding.encode`: one row per text in order, deterministic across runs,
    processes and machines (the hash is fixed 64-bit integer arithmetic). A text with no letters
    or digits has no 3-grams and gets an all-zero row, which is at cosine 0 to everything.
    Texts must not contain NUL characters (they separate the texts internally).

    ``threads`` > 1 encodes that many chunks of texts at once: a chunk's work is mostly numpy
    kernels over whole arrays, which run without the GIL, and each chunk writes only its own
    rows, so the result is the same for any number of threads. Leave it at 1 where every core
    already runs an encoder (Spark's Python workers).
    """
    if dim <= 0:
        raise ValueError(f"dim must be positive, got {dim}")
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    texts = list(texts)
    out = np.zeros((len(texts), dim), dtype=np.float32)

    def encode_rows(start: int) -> None:
        out[start : start + _CHUNK] = _encode_chunk(texts[start : start + _CHUNK], dim)

    starts = range(0, len(texts), _CHUNK)
    if threads == 1 or len(starts) < 2:
        for start in starts:
            encode_rows(start)
    else:
        with ThreadPoolExecutor(max_workers=min(threads, len(starts)), thread_name_prefix="chargram") as pool:
            list(pool.map(encode_rows, starts))
    return out
