"""Whose exception is it? An exception counts as a framework's answer (an error record, or on an invalid input the
framework signalling the problem) only when the framework raised it. Python's own errors for code that is wrong (a
missing attribute or name, a call with arguments the callee does not take) raised in a frame of the harness, an
adapter or a user's function belong to that code: an error of the code, never a signal about the input.

A keyword that the installed release of a function does not take (an older release without an `axis=` its successor added) is what that
release cannot be called with: the caller learns it from the TypeError raised at its own call, and the record is
`unsupported` for the case. So is a door whose public function the release does not have yet (a release older than
the function), named by the AttributeError of its own module.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

# What the interpreter raises for wrong code. Frameworks raise these too, from their own frames; from ours they are
# bugs. A TypeError counts only where it is about a call's arguments: a framework's C code raises TypeError for bad
# input too, and its traceback ends in the caller's frame like the caller's own mistake.
CODE_ERRORS = (AttributeError, NameError, ImportError, SyntaxError)
_CALL_ERROR = re.compile(r"unexpected keyword argument|missing \d+ required (positional|keyword-only) argument|"
                         r"takes \d+ positional arguments? but \d+ (was|were) given|got multiple values for argument")
_NO_SUCH_KEYWORD = re.compile(r"got an unexpected keyword argument '(\w+)'")
_NO_SUCH_FUNCTION = re.compile(r"module '([\w.]+)' has no attribute '(\w+)'")


def _innermost(tb: TracebackType | None) -> TracebackType | None:
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb


def chain(error: BaseException) -> list[BaseException]:
    """The error and what caused it, outermost first (each once)."""
    out, e = [], error
    while e is not None and all(e is not x for x in out):
        out.append(e)
        e = e.__cause__ or e.__context__
    return out


def package_dirs(modules: Iterable[str]) -> tuple[str, ...]:
    """The folders of the framework's imported packages (their frames are the framework's)."""
    dirs = []
    for name in modules:
        module = sys.modules.get(name.replace("-", "_"))
        for path in getattr(module, "__path__", None) or ([module.__file__] if getattr(module, "__file__", None) else []):
            dirs.append(str(Path(path).resolve().parent if Path(path).is_file() else Path(path).resolve()))
    return tuple(dirs)


def raised_by_code(error: BaseException, framework_dirs: tuple[str, ...]) -> str | None:
    """Where the harness's or the user's own code raised `error` ("file:line"), or None when it is the framework's:
    a code error whose innermost frame, over the whole chain (a framework may attach its unfiltered frames as the cause), lies
    outside every framework folder."""
    code_error = isinstance(error, CODE_ERRORS) or (isinstance(error, TypeError) and _CALL_ERROR.search(str(error)))
    if not code_error or not framework_dirs:
        return None
    frames = [tb for e in chain(error) if (tb := _innermost(e.__traceback__)) is not None]
    if not frames:
        return None
    for tb in frames:
        if str(Path(tb.tb_frame.f_code.co_filename).resolve()).startswith(framework_dirs):
            return None
    last = frames[0]
    return f"{last.tb_frame.f_code.co_filename}:{last.tb_lineno}"


def missing_keyword(error: BaseException) -> str | None:
    """The keyword a called function does not take, where that is what `error` says."""
    match = _NO_SUCH_KEYWORD.search(str(error)) if isinstance(error, TypeError) else None
    return match.group(1) if match else None


def missing_function(error: BaseException, door: str) -> str | None:
    """The public function (`package.function`) that the installed release lacks, where `error` says
    that the module has no attribute of the very name the door calls, or None. Any other missing attribute is a
    bug of the calling code, never hidden as "unsupported"."""
    match = _NO_SUCH_FUNCTION.search(str(error)) if isinstance(error, AttributeError) else None
    if match and re.search(rf"(^|[.\s(]){re.escape(match.group(2))}($|[\s(])", door):
        return f"{match.group(1)}.{match.group(2)}"
    return None
