"""Names people give things: participants, routes and steps.

A name is 1 to 80 characters of any script. Names are stored in Unicode
normal form NFC, so two spellings that look the same (a precomposed "é" and
"e" with a combining accent) are the same name.
"""

from __future__ import annotations

import unicodedata

MAX_NAME_LENGTH = 80

# Unicode categories a name may not contain: controls, line and paragraph
# separators, surrogates, private use and unassigned code points.
_FORBIDDEN_CATEGORIES = {"Cc", "Zl", "Zp", "Cs", "Co", "Cn"}
# Format characters (category Cf) are invisible, so only the joiners that
# scripts such as Persian and emoji sequences need are allowed.
_ALLOWED_FORMAT = {"\u200c", "\u200d"}


def normalize_name(raw: str) -> str:
    """Return ``raw`` trimmed and in NFC."""
    return unicodedata.normalize("NFC", raw.strip())


def name_problem(name: str) -> str | None:
    """Return why ``name`` (already normalized) is not a valid name, or None."""
    if not name:
        return "is empty"
    if len(name) > MAX_NAME_LENGTH:
        return f"is {len(name)} characters long; the limit is {MAX_NAME_LENGTH}"
    for char in name:
        category = unicodedata.category(char)
        forbidden = category in _FORBIDDEN_CATEGORIES or (
            category == "Cf" and char not in _ALLOWED_FORMAT
        )
        if forbidden:
            return (
                f"contains U+{ord(char):04X} ({unicodedata.name(char, 'unnamed')}), "
                f"a character names may not contain"
            )
    return None
