"""What counts as whitespace, spelled out for regex engines whose ``\\s`` is narrower than Python's."""

from __future__ import annotations

#: Every character ``str.isspace`` accepts, which is what ``str.split()`` (and so
#: ``collapse_whitespace``) splits on. Spelled out for the JVM and for RE2, whose ``\\s`` is
#: ASCII-only; a test checks the list against Python.
WHITESPACE_CODEPOINTS: tuple[int, ...] = (
    0x9, 0xA, 0xB, 0xC, 0xD, 0x1C, 0x1D, 0x1E, 0x1F, 0x20, 0x85, 0xA0, 0x1680,
    *range(0x2000, 0x200B), 0x2028, 0x2029, 0x202F, 0x205F, 0x3000,
)  # fmt: skip
#: The same characters as ``\x{h}`` escapes, which Java's regular expressions and RE2 (Arrow's)
#: both read, for use inside a bracket class.
WHITESPACE_ESCAPES = "".join(f"\\x{{{c:x}}}" for c in WHITESPACE_CODEPOINTS)
