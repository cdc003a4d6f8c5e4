"""IP addresses: one spelling per address, so equal addresses compare equal as strings.

Parsing is the standard library's ``ipaddress``, which knows both families and all the ways
IPv6 can be abbreviated. Private and reserved addresses are kept: an IP is weak, shared
evidence (NAT, carriers) that the identity graph never links on alone, so there is nothing to
gain by second-guessing it here. Only the 'no address' fillers are rejected, because a
thousand records all 'at' 0.0.0.0 would look like one busy household.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache

from idr_pipeline.standardize.base import EMPTY, INVALID_IP, PLACEHOLDER, Normalized, is_placeholder

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Addresses that stand for 'unknown' rather than for a host.
PLACEHOLDER_IPS: frozenset[IPAddress] = frozenset(
    {
        ipaddress.ip_address("0.0.0.0"),
        ipaddress.ip_address("255.255.255.255"),
        ipaddress.ip_address("::"),
    }
)

_IPV4_WITH_PORT = re.compile(r"^([0-9]{1,3}(?:\.[0-9]{1,3}){3}):[0-9]{1,5}$")
_BRACKETED_V6 = re.compile(r"^\[([0-9A-Fa-f:.]+)\](?::[0-9]{1,5})?$")
_ZERO_PADDED_V4 = re.compile(r"^[0-9]{1,3}(?:\.[0-9]{1,3}){3}$")


def normalize_ip(value: str | None) -> Normalized:
    """Compressed IPv4/IPv6 text ('010.000.000.001' -> '10.0.0.1'), or why it is not an address."""
    if value is None:
        return EMPTY
    return _normalize_ip(value)


@lru_cache(maxsize=65536)
def _normalize_ip(value: str) -> Normalized:
    text = value.strip()
    if not text:
        return EMPTY
    if is_placeholder(text):
        return Normalized(None, PLACEHOLDER)
    address = _parse(_strip_port(text))
    if address is None:
        return Normalized(None, INVALID_IP)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        # '::ffff:1.2.3.4' is how dual-stack servers log an IPv4 client; it is the same host.
        address = address.ipv4_mapped
    if address in PLACEHOLDER_IPS:
        return Normalized(None, PLACEHOLDER)
    return Normalized(address.compressed, None)


def _strip_port(text: str) -> str:
    """Web logs often keep the client port ('1.2.3.4:51234', '[::1]:443'); it is not the address."""
    if match := _IPV4_WITH_PORT.match(text):
        return match[1]
    if match := _BRACKETED_V6.match(text):
        return match[1]
    return text


def _parse(text: str) -> IPAddress | None:
    if _ZERO_PADDED_V4.match(text):
        # Python rejects leading zeros (they could mean octal), but in exported data they are
        # fixed-width padding of decimal octets.
        text = ".".join(str(int(octet)) for octet in text.split("."))
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None
