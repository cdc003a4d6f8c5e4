"""Value pools the generator samples from.

Faker is slow per call (tens of microseconds) and its global state is awkward to seed, so it is
used only here, once per run, to build small pools; every per-person and per-record draw is a
numpy sample from these pools. That keeps 100k people to a few seconds and keeps the output a
pure function of the seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from faker import Faker
from faker.providers.address.en_US import Provider as AddressProvider
from faker.providers.person.en_US import Provider as PersonProvider

# Approximate state populations (millions). Cities are spread over states by this weight so that
# "CA" and "TX" dominate the way they do in real customer files.
STATE_POPULATION: dict[str, tuple[str, float]] = {
    "AL": ("Alabama", 5.1), "AK": ("Alaska", 0.7), "AZ": ("Arizona", 7.4), "AR": ("Arkansas", 3.0),
    "CA": ("California", 39.0), "CO": ("Colorado", 5.8), "CT": ("Connecticut", 3.6),
    "DE": ("Delaware", 1.0), "DC": ("District of Columbia", 0.7), "FL": ("Florida", 22.0),
    "GA": ("Georgia", 11.0), "HI": ("Hawaii", 1.4), "ID": ("Idaho", 1.9), "IL": ("Illinois", 12.5),
    "IN": ("Indiana", 6.8), "IA": ("Iowa", 3.2), "KS": ("Kansas", 2.9), "KY": ("Kentucky", 4.5),
    "LA": ("Louisiana", 4.6), "ME": ("Maine", 1.4), "MD": ("Maryland", 6.2),
    "MA": ("Massachusetts", 7.0), "MI": ("Michigan", 10.0), "MN": ("Minnesota", 5.7),
    "MS": ("Mississippi", 2.9), "MO": ("Missouri", 6.2), "MT": ("Montana", 1.1),
    "NE": ("Nebraska", 2.0), "NV": ("Nevada", 3.2), "NH": ("New Hampshire", 1.4),
    "NJ": ("New Jersey", 9.3), "NM": ("New Mexico", 2.1), "NY": ("New York", 19.6),
    "NC": ("North Carolina", 10.7), "ND": ("North Dakota", 0.8), "OH": ("Ohio", 11.8),
    "OK": ("Oklahoma", 4.0), "OR": ("Oregon", 4.2), "PA": ("Pennsylvania", 13.0),
    "RI": ("Rhode Island", 1.1), "SC": ("South Carolina", 5.3), "SD": ("South Dakota", 0.9),
    "TN": ("Tennessee", 7.1), "TX": ("Texas", 30.0), "UT": ("Utah", 3.4), "VT": ("Vermont", 0.6),
    "VA": ("Virginia", 8.7), "WA": ("Washington", 7.8), "WV": ("West Virginia", 1.8),
    "WI": ("Wisconsin", 5.9), "WY": ("Wyoming", 0.6),
}  # fmt: skip

# Real, geographic US area codes, so that phone validation (libphonenumber) accepts the numbers.
AREA_CODES: tuple[str, ...] = tuple(
    """201 202 203 205 206 207 208 209 210 212 213 214 215 216 217 218 219 224 225 228 229 231 234
    239 240 248 251 252 253 254 256 260 262 267 269 270 276 281 301 302 303 304 305 307 308 309 310
    312 313 314 315 316 317 318 319 320 321 323 325 330 334 336 337 339 347 351 352 360 361 386 401
    402 404 405 406 407 408 409 410 412 413 414 415 417 419 423 424 425 430 432 434 435 440 443 469
    470 478 479 480 484 501 502 503 504 505 507 508 509 510 512 513 515 516 517 518 520 530 540 541
    551 559 561 562 563 567 570 571 573 574 575 580 585 586 601 602 603 605 606 607 608 609 610 612
    614 615 616 617 618 619 620 623 626 630 631 636 641 646 650 651 660 661 662 678 682 701 702 703
    704 706 707 708 712 713 714 715 716 717 718 719 720 724 727 731 732 734 740 754 757 760 763 765
    770 772 773 774 775 781 785 786 801 802 803 804 805 806 808 810 812 813 814 815 816 817 818 828
    830 831 832 843 845 847 848 850 856 857 858 859 860 862 863 864 865 870 872 878 901 903 904 906
    907 908 909 910 912 913 914 915 916 917 918 919 920 925 928 931 936 937 940 941 947 949 951 952
    954 956 970 971 972 973 978 979 980 985 989""".split()
)

# Share of personal email addresses by provider, roughly as seen in US consumer files.
EMAIL_DOMAINS: dict[str, float] = {
    "gmail.com": 0.36, "yahoo.com": 0.14, "hotmail.com": 0.08, "outlook.com": 0.07,
    "aol.com": 0.05, "icloud.com": 0.07, "comcast.net": 0.04, "msn.com": 0.02, "live.com": 0.03,
    "att.net": 0.02, "verizon.net": 0.02, "sbcglobal.net": 0.02, "me.com": 0.02, "protonmail.com": 0.01,
    "ymail.com": 0.01, "mail.com": 0.01, "charter.net": 0.01, "cox.net": 0.02,
}  # fmt: skip

# Street suffixes people actually live on, with the weight of each; damage.py knows their
# abbreviations. Faker's own list has 225 mostly exotic suffixes ("Burgs", "Unions").
STREET_SUFFIXES: dict[str, float] = {
    "Street": 0.26, "Avenue": 0.16, "Road": 0.12, "Drive": 0.12, "Lane": 0.07, "Court": 0.06,
    "Boulevard": 0.04, "Place": 0.04, "Way": 0.04, "Circle": 0.03, "Terrace": 0.02, "Parkway": 0.02,
    "Trail": 0.01, "Highway": 0.01,
}  # fmt: skip

_COMMON_STREET_BASES = (
    "Main", "Oak", "Maple", "Pine", "Cedar", "Elm", "Park", "Lake", "Hill", "Washington", "Church",
    "Walnut", "Spring", "Highland", "Sunset", "Ridge", "River", "Forest", "Meadow", "Willow",
    "1st", "2nd", "3rd", "4th", "5th", "6th", "7th", "8th", "9th", "10th", "11th", "12th",
    "Center", "Mill", "Franklin", "Jefferson", "Lincoln", "Madison", "Jackson", "Cherry",
)  # fmt: skip

_CARRIER_IPS = 400  # CGNAT / carrier egress addresses shared by many unrelated people


@dataclass(frozen=True)
class Pools:
    """Everything sampled per person, as numpy arrays plus matching probability vectors."""

    male_first: np.ndarray
    male_first_p: np.ndarray
    female_first: np.ndarray
    female_first_p: np.ndarray
    last: np.ndarray
    last_p: np.ndarray
    street_bases: np.ndarray
    street_bases_p: np.ndarray
    street_suffixes: np.ndarray
    street_suffixes_p: np.ndarray
    city: np.ndarray
    city_state: np.ndarray
    city_zip: np.ndarray  # first zip of the city; a city owns a few consecutive zips
    city_zip_count: np.ndarray
    city_p: np.ndarray
    state_names: dict[str, str]
    email_domains: np.ndarray
    email_domains_p: np.ndarray
    area_codes: np.ndarray
    carrier_ips: np.ndarray


def _normalized(weights: np.ndarray) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    return w / w.sum()


def _zipf(n: int, s: float = 1.0) -> np.ndarray:
    """Rank-frequency weights: a few cities and streets are everywhere, most are rare."""
    return _normalized(1.0 / np.arange(1, n + 1, dtype=np.float64) ** s)


def random_public_ips(rng: np.random.Generator, n: int) -> np.ndarray:
    """IPv4 addresses outside private, loopback and multicast ranges."""
    first = rng.choice(np.array([o for o in range(11, 224) if o not in (100, 127, 169, 172, 192)]), n)
    rest = rng.integers(0, 256, size=(n, 2))
    last = rng.integers(1, 255, size=n)
    return np.array(
        [f"{a}.{b}.{c}.{d}" for a, b, c, d in zip(first, rest[:, 0], rest[:, 1], last, strict=True)],
        dtype=object,
    )


def build_pools(seed: int, n_cities: int = 3000, n_street_bases: int = 4000) -> Pools:
    """Build the pools once per run; Faker is seeded per instance so runs are reproducible."""
    rng = np.random.default_rng([seed, 1])
    fake = Faker("en_US")
    fake.seed_instance(seed)

    male = PersonProvider.first_names_male
    female = PersonProvider.first_names_female
    last = PersonProvider.last_names

    # Street name bases: mostly surnames and given names (as Faker's street_name does), plus the
    # handful of names every town has, which the Zipf weights then make the most common.
    # Faker's en_US lists hold only ~1,700 distinct names, so drawing until n_street_bases are
    # unique could never finish; take a seeded shuffle of the distinct names instead (capped
    # at what exists). A separate generator keeps the draws below independent of this one.
    bases: list[str] = list(_COMMON_STREET_BASES)
    seen = set(bases)
    candidates = [c for c in dict.fromkeys([*last, *PersonProvider.first_names]) if c not in seen]
    order = np.random.default_rng([seed, 2]).permutation(len(candidates))
    bases += [candidates[i] for i in order[: max(0, n_street_bases - len(bases))]]

    cities: list[str] = []
    seen = set()
    while len(cities) < n_cities:
        name = fake.city()
        if name not in seen:
            seen.add(name)
            cities.append(name)
    codes = np.array(list(STATE_POPULATION), dtype=object)
    state_p = _normalized(np.array([pop for _, pop in STATE_POPULATION.values()]))
    city_state = rng.choice(codes, size=n_cities, p=state_p)
    ranges = AddressProvider.states_postcode
    zip_count = rng.integers(1, 5, size=n_cities)
    city_zip = np.empty(n_cities, dtype=np.int64)
    for i, code in enumerate(city_state):
        lo, hi = ranges[code]
        city_zip[i] = rng.integers(lo, max(lo + 1, hi - 4))

    domains = np.array(list(EMAIL_DOMAINS), dtype=object)
    return Pools(
        male_first=np.array(list(male), dtype=object),
        male_first_p=_normalized(np.array(list(male.values()))),
        female_first=np.array(list(female), dtype=object),
        female_first_p=_normalized(np.array(list(female.values()))),
        last=np.array(list(last), dtype=object),
        last_p=_normalized(np.array(list(last.values()))),
        street_bases=np.array(bases, dtype=object),
        street_bases_p=_zipf(len(bases), 0.9),
        street_suffixes=np.array(list(STREET_SUFFIXES), dtype=object),
        street_suffixes_p=_normalized(np.array(list(STREET_SUFFIXES.values()))),
        city=np.array(cities, dtype=object),
        city_state=city_state,
        city_zip=city_zip,
        city_zip_count=zip_count,
        city_p=_zipf(n_cities, 0.8),
        state_names={code: name for code, (name, _) in STATE_POPULATION.items()},
        email_domains=domains,
        email_domains_p=_normalized(np.array(list(EMAIL_DOMAINS.values()))),
        area_codes=np.array(AREA_CODES, dtype=object),
        carrier_ips=random_public_ips(rng, _CARRIER_IPS),
    )
