"""Script library: intents, triggers and reply template names per locale, loaded from scripts_library/."""

from csbot.library.load import load_libraries, load_library
from csbot.library.model import (
    DEFAULT_LOCALE,
    SPECIAL_INTENTS,
    TAXONOMY,
    Intent,
    Library,
    LibraryError,
    LibrarySet,
    Mode,
)

__all__ = [
    "DEFAULT_LOCALE",
    "SPECIAL_INTENTS",
    "TAXONOMY",
    "Intent",
    "Library",
    "LibraryError",
    "LibrarySet",
    "Mode",
    "load_libraries",
    "load_library",
]
