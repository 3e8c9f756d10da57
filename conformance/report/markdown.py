"""Markdown that no data can break: a table whose cells are escaped, and the escaping itself."""

from __future__ import annotations

import html
import unicodedata


def table(header: list[str], rows: list[list]) -> list[str]:
    """A GitHub-flavoured table; every cell is data, escaped (md_cell), so no case id or message can break out of it."""
    out = ["| " + " | ".join(md_cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(md_cell(c) for c in row) + " |" for row in rows]
    return out


def md_cell(text: object) -> str:
    """Text from a case file or a framework, made inert for Markdown (GitHub's too) and for a table cell: HTML
    escaped, control characters dropped, and the characters that end a cell, a code span or start a link escaped."""
    clean = "".join(" " if unicodedata.category(ch)[0] == "C" else ch for ch in str(text))
    clean = html.escape(clean, quote=False)
    for ch in ("\\", "|", "`", "*", "_", "[", "]"):
        clean = clean.replace(ch, "\\" + ch)
    return clean
