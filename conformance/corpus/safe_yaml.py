"""Reading YAML that anybody may have written: bounded in size, depth and expansion, strict about keys.

PyYAML's safe loader is safe against code execution, not against cost: a 560-byte file of nested aliases
("billion laughs") expands to gigabytes, a FIFO named *.yaml blocks forever, a 5,000-deep nesting overflows the
stack, and duplicate keys silently keep the last value. Every case file and registry goes through here.
Limits come from the environment so that spawned workers read files with the same limits as the command
that started them (`conformance run --max-file-mb`, `--max-elements` set these).
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

DEFAULT_MAX_FILE_MB = 10.0  # the bundled corpus's largest file is under 10 kB
# Per array. A case's peak memory in a worker grows with its elements (the extended-precision oracle keeps several
# 80-bit copies of the logits and their derivatives): the default keeps the largest accepted case under
# MEMORY_BUDGET_GB per worker (docs/case-format.md has the measurement; tests/test_faults.py checks it), room for
# 2^18-class vocabularies of a few rows. The bundled corpus's largest array is 2^17 elements.
DEFAULT_MAX_ELEMENTS = 2 ** 22
MEMORY_BUDGET_GB = 2.0
MAX_DEPTH = 32  # nesting of mappings and lists; a case needs 6 or so (cases, case, logits rows, elements)
# Nodes per file: the load time grows with them (the pure-Python composer takes about 25 us a node), so a 10 MB file
# of 5 million tiny nodes would take minutes. Literal arrays are for small cases (generators make the large ones);
# the bundled corpus's largest file has under 5,000 nodes.
MAX_NODES = 200_000
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufffe\uffff]")


class YamlError(ValueError):
    """A file that cannot be read as bounded, strict YAML; str() is the message without the file name."""


@dataclass(frozen=True)
class Limits:
    """How large a case file and an array of a case may be (--max-file-mb, --max-elements); None: the default."""
    max_file_mb: float | None = None
    max_elements: int | None = None


_limits = Limits()


def set_limits(limits: Limits) -> Limits:
    """The limits this process reads case files with (a worker's come with its configuration); returns the previous."""
    global _limits
    previous, _limits = _limits, limits
    return previous


def max_file_bytes() -> int:
    mb = _limits.max_file_mb
    return int((mb if mb and mb > 0 else DEFAULT_MAX_FILE_MB) * 1024 * 1024)


def max_elements() -> int:
    n = _limits.max_elements
    return int(n if n and n > 0 else DEFAULT_MAX_ELEMENTS)


def _line(node_or_event) -> str:
    mark = getattr(node_or_event, "start_mark", None)
    return f"line {mark.line + 1}: " if mark is not None else ""


class _StrictLoader(yaml.SafeLoader):
    """Safe loading without aliases, with bounded nesting, string keys only and no duplicate keys."""

    depth = 0
    nodes = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise YamlError(f"{_line(event)}YAML aliases (*{event.anchor}) are not allowed: write the values out")
        event = self.peek_event()
        if getattr(event, "tag", None) not in (None, "!"):  # a case file is plain data: a tag only costs time, or runs a constructor
            raise YamlError(f"{_line(event)}YAML tags ({event.tag}) are not allowed: write plain values")
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise YamlError(f"{_line(event)}more than {MAX_NODES:,} values: generate large arrays (docs/case-format.md) instead of writing them out")
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise YamlError(f"{_line(self.peek_event())}nested deeper than {MAX_DEPTH} levels")
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise YamlError(f"{_line(key_node)}merge keys (<<) are not allowed")
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                raise YamlError(f"{_line(key_node)}key {key!r} is not a string")
            if key in seen:
                raise YamlError(f"{_line(key_node)}duplicate key {key!r}")
            seen.add(key)
        return super().construct_mapping(node, deep)


def read_text(path: Path) -> str:
    """The file's text, refused before reading when it is not a regular file or is over the size limit."""
    try:
        info = os.stat(path)
    except OSError as exc:
        raise YamlError(f"cannot read: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise YamlError("not a regular file (a FIFO, device or socket would block or never end)")
    limit = max_file_bytes()
    if info.st_size > limit:
        raise YamlError(f"{info.st_size / 1e6:.1f} MB is over the {limit / 1024 / 1024:g} MB limit (raise it with --max-file-mb)")
    try:
        data = Path(path).read_bytes()[: limit + 1]
    except OSError as exc:
        raise YamlError(f"cannot read: {exc.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise YamlError(f"not UTF-8 text (byte {exc.start}: {data[exc.start:exc.start + 1]!r})") from None
    bad = _CONTROL.search(text)
    if bad:  # PyYAML would refuse it too, in two lines and by offset; say where, in one
        line = text.count("\n", 0, bad.start()) + 1
        column = bad.start() - (text.rfind("\n", 0, bad.start()) + 1) + 1
        raise YamlError(f"line {line}, column {column}: control character U+{ord(bad.group()):04X} is not allowed in a YAML file")
    return text


def safe_load(path: Path) -> Any:
    text = read_text(path)
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - _StrictLoader is a SafeLoader
    except YamlError:
        raise
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise YamlError(f"not valid YAML{where}: {getattr(exc, 'problem', None) or exc}") from None
    except RecursionError:
        raise YamlError(f"nested deeper than {MAX_DEPTH} levels") from None
