"""Markdown bodies as a reader sees them: the pages escape every punctuation mark of text they did not
write (`formatting.literal`), so tests compare against the text with those escapes resolved."""

from __future__ import annotations

import re

from streamlit.testing.v1 import AppTest

from insights_core.dashboard.formatting import WORD_JOINER

_ESCAPED = re.compile(r"\\([!-/:-@\[-`{-~])")


def unescape(markdown: str) -> str:
    """What CommonMark shows for `markdown` made only of text and backslash escapes, without the invisible
    word joiners `literal` adds."""
    return _ESCAPED.sub(r"\1", markdown).replace(WORD_JOINER, "")


def shown_texts(at: AppTest) -> str:
    """Every markdown, caption, alert and title text of the last run as shown, joined (for `in` checks)."""
    parts = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "info", "warning", "error", "success"):
        parts.extend(unescape(str(element.value)) for element in getattr(at, kind))
    return "\n".join(parts)
