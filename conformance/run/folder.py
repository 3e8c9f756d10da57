"""A run into an output folder, the way `conformance run` makes one: the folder checked before anything runs (bad
input found first), marked while the run writes, the frameworks' output sent to its log, and results.json and the
summary written so that a failure loses nothing (output.py). The command line, `conformance timing --measure` and the
GPU job all run the corpus through here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

from . import output
from .api import SelectionError, prepare, run_corpus
from .config import WorkerConfig
from .defaults import default_compile_cache as default_compile_cache  # re-exported: the GPU job and history use it
from .events import Event
from .pool import DEFAULT_TIMEOUT_S, Outcome
from .runner import FrameworkBroken, Selection

T = TypeVar("T")


class RunRefused(Exception):
    """The run cannot be made as asked (a named framework broken, a selection that matches nothing, a bad folder):
    str() says why in one line (exit 2). Nothing was written into the folder."""


@dataclass(frozen=True)
class RunRequest:
    """Everything one run needs, as typed values (the command line parses its arguments into one)."""
    selection: Selection
    out: Path
    case_paths: list[Path] | None = None  # None: the bundled corpus
    registries: list[Path] | None = None  # None: the bundled registry
    jobs: int = 2
    timeout: float = DEFAULT_TIMEOUT_S
    absent: dict[str, str] = field(default_factory=dict)  # frameworks left out as not installed, and why
    machine: tuple[int, int] | None = None  # --shard K/N
    config: WorkerConfig = WorkerConfig()  # how every worker is set up (the case files' limits)


def made_in(out: Path, make: Callable[[str], tuple[dict, T]], summary: Callable[[Path, dict], Path],
            refused: tuple[type[Exception], ...] = ()) -> tuple[dict, T]:
    """`make(log)` (a results document and what else it returns) run into the folder `out`, then results.json and the
    summary (`summary(out, doc)`) written. `log` is out/run.log.partial, where the workers write what the frameworks
    print (their log lines, warnings, compiler output) instead of the terminal (it replaces run.log when the results
    are written): the run's own output stays the progress and the verdict. The folder is checked first and marked
    while `make` runs; an exception of `refused` (or a broken named framework, a selection that matches nothing, a bad
    folder) leaves it as it was and raises RunRefused. Raises output.WriteFailed where the environment failed a write."""
    token = None
    try:
        output.check(out)
        token = output.start(out)
        doc, rest = make(str((out / output.PARTIAL_LOG).resolve()))  # output.start made it
    except (FrameworkBroken, SelectionError, output.FolderError, *refused) as exc:
        if out.is_dir():
            output.abandon(out, token)
        raise RunRefused(str(exc)) from None
    output.save(doc, out, summary, token)
    return doc, rest


def run_into(request: RunRequest, summary: Callable[[Path, dict], Path], on_event: Callable[[Event], None] = lambda msg: None) -> tuple[dict, Outcome]:
    """Run the request's corpus into its folder (made_in). The corpus and the registry are read before anything is
    written: CaseFileError and RegistryError are raised as they are (bad input)."""
    try:
        output.check(request.out)  # a bad folder is said first, as before any other work
        corpus = prepare(request.case_paths, request.selection, request.registries)
    except (SelectionError, output.FolderError) as exc:
        raise RunRefused(str(exc)) from None
    return made_in(request.out, lambda log: run_corpus(corpus, request.selection, request.jobs, request.timeout, request.absent, on_event,
                                                       request.machine, config=replace(request.config, log=log)), summary)
