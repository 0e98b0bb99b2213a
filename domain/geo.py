"""Countries by their ISO 3166-1 alpha-2 code, whatever way a form or an admin wrote them
("de", "DEU", "Germany", "Federal Republic of Germany"), from pycountry's tables."""

from __future__ import annotations

from functools import lru_cache

import pycountry

# Names people write that are not in ISO 3166's tables.
ALIASES = {
    "uk": "GB",
    "great britain": "GB",
    "england": "GB",
    "scotland": "GB",
    "wales": "GB",
    "usa": "US",
    "u.s.": "US",
    "u.s.a.": "US",
    "america": "US",
    "united states of america": "US",
    "south korea": "KR",
    "north korea": "KP",
    "russia": "RU",
    "czechia": "CZ",
    "holland": "NL",
    "the netherlands": "NL",
    "vietnam": "VN",
    "iran": "IR",
    "syria": "SY",
    "laos": "LA",
    "bolivia": "BO",
    "venezuela": "VE",
    "tanzania": "TZ",
    "moldova": "MD",
    "taiwan": "TW",
}


@lru_cache(maxsize=4096)
def country_code(text: str) -> str | None:
    """The alpha-2 code of ``text`` (a code or a name, any case), or None when it names no
    country."""
    key = " ".join(text.strip().split()).casefold()
    if not key:
        return None
    if key in ALIASES:
        return ALIASES[key]
    try:
        found = pycountry.countries.lookup(key)
    except LookupError:
        return None
    return str(found.alpha_2)
