"""The language of what a site's operators read: Chinese (the requirements') unless the site says ``en``.

Each module keeps its own words next to the code that renders them, as ``TEXT = {"zh": {...}, "en": {...}}``;
``words(TEXT, language)`` picks one set, so a document is in one language. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

T = TypeVar("T")


def words(text: Mapping[str, T], language: str | None) -> T:
    """The entry of ``text`` for ``language``: English for ``en``, Chinese for anything else.

    Example:
        ```python
        TEXT = {"zh": {"rows": "行数"}, "en": {"rows": "rows"}}
        words(TEXT, "en")["rows"]  # 'rows'
        ```
    """
    return text[language_code(language)]


def language_code(language: str | None) -> str:
    """``en`` for English, ``zh`` for anything else (unset, unknown)."""
    return "en" if language == "en" else "zh"


def language_of(profile: object | None) -> str:
    """A site profile's language (``zh`` without a profile): what its reports, messages and forms are in."""
    return language_code(getattr(profile, "language", None))
