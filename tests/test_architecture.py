"""The architecture, checked: framework-specific code lives in conformance/adapters/ only, and functions stay short.

NumPy is not on the list: it is the harness's own array library (the oracle, the judge), as well as one adapter.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "conformance"
FRAMEWORK_WORDS = re.compile(r"\b(torch|pytorch|tensorflow|jax|optax|keras|cupy|scipy|xla|absl|inductor|onednn|tf\.|jnp)\b"
                             r"|\b(TF|XLA|TORCH|TORCHINDUCTOR|JAX|KERAS|CUPY)_[A-Z_]+", re.IGNORECASE)
MAX_FUNCTION_LINES = 60


def _package_files(*suffixes: str) -> list[Path]:
    return [p for p in PACKAGE.rglob("*") if p.suffix in suffixes and "adapters" not in p.relative_to(PACKAGE).parts]


def test_no_framework_name_outside_the_adapters():
    found = [f"{p.relative_to(PACKAGE.parent)}:{n}: {line.strip()[:100]}"
             for p in _package_files(".py", ".html", ".json", ".ini") for n, line in enumerate(p.read_text().splitlines(), 1)
             if FRAMEWORK_WORDS.search(line)]
    assert not found, "framework-specific text outside conformance/adapters/:\n" + "\n".join(found)


def test_the_check_sees_a_framework_name():
    """The pattern above can fail: it finds what it is meant to find."""
    for line in ("import torch", "tf.nn.softmax(x)", "os.environ['XLA_FLAGS']", "jax.jit", "# TensorFlow's pools"):
        assert FRAMEWORK_WORDS.search(line), line
    assert not FRAMEWORK_WORDS.search("the framework's own kernels; numpy as the oracle's arrays")


def _op_name_compared(line: str) -> bool:
    """A line that decides by an op's name (`op == "softmax"`, `"softmax_cross_entropy" in ops`): what the op table
    (conformance/model/ops.py) answers instead."""
    from conformance.model.names import OPS

    names = "|".join(OPS)
    return bool(re.search(rf'(==|!=)\s*"({names})"|"({names})"\s+(not\s+)?in\b|\bin\s+\(\s*"({names})"', line))


def test_no_module_decides_by_an_op_name_but_the_op_table():
    """Adapters name the op each of their doors computes (Impl(..., "softmax", ...)), which is a declaration; nothing
    compares an op's name to decide what it takes or returns."""
    found = [f"{p.relative_to(PACKAGE.parent)}:{n}: {line.strip()[:100]}" for p in PACKAGE.rglob("*.py") if p.name != "ops.py"
             for n, line in enumerate(p.read_text().splitlines(), 1) if _op_name_compared(line)]
    assert not found, "decided by an op's name outside the op table:\n" + "\n".join(found)


def test_the_op_name_check_can_fail():
    for line in ('if op == "softmax":', 'if "softmax_cross_entropy" in case.ops:', 'x if op in ("log_softmax", "softmax") else y',
                 'if inp.op != "linear_cross_entropy":'):
        assert _op_name_compared(line), line
    assert not _op_name_compared('Impl(NAME, "torch.softmax", "softmax", softmax, key="softmax")')


def _status_words_compared(source: str) -> list[int]:
    """The lines where a status is compared with a word of its own (`r.status == "known"`, `status in ("fail",
    "error")`) instead of with the enum (conformance/model/status.py)."""
    from conformance.model.status import STATUSES

    def words(node: ast.AST) -> bool:
        if isinstance(node, ast.Constant):
            return node.value in STATUSES
        return isinstance(node, (ast.Tuple, ast.List, ast.Set)) and any(words(e) for e in node.elts)

    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(words(x) for x in sides) and any("status" in ast.unparse(x) for x in sides if not words(x)):
                found.append(node.lineno)
    return found


def test_no_status_is_compared_with_a_word_outside_the_enum():
    found = [f"{p.relative_to(PACKAGE.parent)}:{n}" for p in PACKAGE.rglob("*.py") if p.name != "status.py"
             for n in _status_words_compared(p.read_text())]
    assert not found, "a status compared with a string instead of model.status.Status:\n" + "\n".join(found)


def test_the_status_check_can_fail():
    for line in ('r.status == "known"', 'x = r["status"] in ("unsupported", "skip")', '"fail" != record.status', 'status in {"error"}'):
        assert _status_words_compared(line), line
    for line in ('r.status is Status.KNOWN', 'r.behaviour == "error"', 'kind == "fail"', 'r.status.ran'):
        assert not _status_words_compared(line), line


def test_no_function_over_60_lines():
    long = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES:
                long.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)")
    assert not long, long


def _unannotated(source: str) -> list[str]:
    """Public functions (module level, and methods of public classes) with an argument or the return left unannotated."""
    def public(nodes: list[ast.stmt]) -> list[ast.FunctionDef]:
        return [n for n in nodes if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and not n.name.startswith("_")]

    tree = ast.parse(source)
    functions = public(tree.body) + [m for c in tree.body if isinstance(c, ast.ClassDef) and not c.name.startswith("_") for m in public(c.body)]
    return [f"{f.lineno} {f.name}" for f in functions
            if f.returns is None or any(a.annotation is None for a in f.args.args + f.args.kwonlyargs if a.arg not in ("self", "cls"))]


def test_public_functions_have_type_hints():
    missing = [f"{p.relative_to(PACKAGE.parent)}:{where}" for p in PACKAGE.rglob("*.py") for where in _unannotated(p.read_text())]
    assert not missing, "public functions without type hints:\n" + "\n".join(missing)


def test_the_type_hint_check_sees_a_missing_hint():
    assert _unannotated("def f(x) -> int: ...") == ["1 f"]
    assert _unannotated("def f(x: int): ...") == ["1 f"]
    assert _unannotated("class A:\n    def m(self, x) -> None: ...") == ["2 m"]
    assert not _unannotated("def f(x: int) -> int: ...\ndef _g(x): ...\nclass _B:\n    def m(self, x): ...")


# The layers, lowest first: a module imports only from its own layer or one below. The package itself (its
# __init__: the version) is below them all; `conformance.testing`, the public check API, above them all.
LAYERS = ("model", "corpus", "adapters", "judge", "run", "speed", "report", "gate", "app")
TOP = len(LAYERS)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(module: str, source: str, is_package: bool) -> set[tuple[str, str | None]]:
    """(module, name) for every import of the package in this module's source, wherever the statement is (deferred
    into a function, or under TYPE_CHECKING, counts the same: neither may hide a cycle)."""
    found: set[tuple[str, str | None]] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                target = ".".join(base[:len(base) - node.level + 1] + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] == "conformance":
                found |= {(target, a.name) for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {(a.name, None) for a in node.names if a.name.split(".")[0] == "conformance"}
    return found


def import_graph(sources: dict[str, tuple[str, bool]]) -> dict[str, set[str]]:
    """module -> the package's modules it imports (`sources`: module -> (its source, whether it is a package)).
    `from P import m` depends on the module P.m where there is one, else on P (the name is P's)."""
    graph = {}
    for m, (src, pkg) in sources.items():
        targets = {f"{t}.{name}" if f"{t}.{name}" in sources else t for t, name in _imports(m, src, pkg)}
        graph[m] = {t for t in targets if t in sources and t != m}
    return graph


def layer(module: str) -> int:
    parts = module.split(".")
    if len(parts) == 1:
        return -1
    return LAYERS.index(parts[1]) if parts[1] in LAYERS else TOP


def _name(level: int) -> str:
    return "package" if level < 0 else LAYERS[level] if level < TOP else "top"


def upward(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{m} (layer {_name(layer(m))}) imports {t} ({_name(layer(t))})" for m, targets in graph.items() for t in targets if layer(t) > layer(m))


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles, one per strongly connected group of modules (Tarjan); a package's __init__ importing its own
    modules is not a cycle unless a module imports the package back."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _package_graph() -> dict[str, set[str]]:
    return import_graph({_module_name(p): (p.read_text(), p.name == "__init__.py") for p in PACKAGE.rglob("*.py")})


def test_the_layers_are_folders_of_the_package():
    loose = sorted(p.name for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "__main__", "testing"))
    assert not loose, f"modules outside the layers' folders: {loose}"
    assert all((PACKAGE / name / "__init__.py").is_file() for name in LAYERS)


def test_imports_go_only_down():
    assert not upward(_package_graph()), "imports up the layers:\n" + "\n".join(upward(_package_graph()))


def test_no_import_cycle():
    assert not cycles(_package_graph()), cycles(_package_graph())


def test_the_import_checks_see_an_upward_import_and_a_cycle():
    """The checks above can fail: an upward import (model importing the gate) and a cycle hidden in a function."""
    graph = import_graph({
        "conformance.model.record": ("from ..gate import records", False),
        "conformance.gate": ("", True),
        "conformance.gate.records": ("def f():\n    from ..report import summary\n", False),
        "conformance.report": ("", True),
        "conformance.report.summary": ("from ..gate.records import GateReport\n", False),
    })
    assert upward(graph) == ["conformance.model.record (layer model) imports conformance.gate.records (gate)",
                             "conformance.report.summary (layer report) imports conformance.gate.records (gate)"]
    assert cycles(graph) == [["conformance.gate.records", "conformance.report.summary"]]
    assert not cycles(import_graph({"conformance.run": ("from . import pool", True), "conformance.run.pool": ("", False)}))


def contract_reads(source: str) -> list[str]:
    """Names the code reads from an adapter module by string: through declared()/declaration()/optional_function(),
    and any getattr(<x>, "CONSTANT") (what the contract helpers replace)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in ("declared", "declaration", "optional_function") or (name == "getattr" and node.args[1].value.isupper()):
                found.append(f"{name}:{node.args[1].value}")
    return found


def test_the_core_reads_only_what_the_adapter_contract_declares():
    """Every constant and optional function the core reads from an adapter is declared, with its default, in
    adapters/base.py (DECLARATIONS, OPTIONAL_FUNCTIONS), and read through its helpers, never by a bare getattr."""
    from conformance.adapters.base import DECLARATIONS, OPTIONAL_FUNCTIONS

    reads = [(p, r) for p in PACKAGE.rglob("*.py") if p.name != "base.py" for r in contract_reads(p.read_text())]
    bare = [f"{p.relative_to(PACKAGE.parent)}: {r}" for p, r in reads if r.startswith("getattr:")]
    undeclared = [f"{p.relative_to(PACKAGE.parent)}: {r}" for p, r in reads
                  if not r.startswith("getattr:") and r.split(":")[1] not in {**DECLARATIONS, **OPTIONAL_FUNCTIONS}]
    assert not bare and not undeclared, bare + undeclared
    assert {r.split(":")[1] for _, r in reads} >= {"QUIET_ENV", "THREAD_ENV", "NUMERIC_ENV", "GPU", "REQUIRES", "PACKAGES"}


def test_the_contract_check_sees_a_bare_read():
    assert contract_reads('getattr(adapter, "QUICK_COMPILE", False)\ndeclared(fw, "NOPE")\ngetattr(x, "name")') == \
        ["getattr:QUICK_COMPILE", "declared:NOPE"]


def _package_data_globs() -> list[str]:
    import tomllib

    config = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())
    return config["tool"]["setuptools"]["package-data"]["conformance"]


def _unpackaged(files: list[str], globs: list[str]) -> list[str]:
    from fnmatch import fnmatchcase

    return [f for f in files if not any(fnmatchcase(f, g) and f.count("/") == g.count("/") for g in globs)]


def test_every_data_file_of_the_package_is_in_the_wheel():
    """A template, a case file or a schema that pyproject.toml's package-data does not name is left out of the wheel,
    and the installed tool fails where the checkout works (a report's section templates once did)."""
    files = sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*") if p.is_file() and p.suffix not in (".py", ".pyc")
                   and "__pycache__" not in p.parts)
    assert files and not _unpackaged(files, _package_data_globs()), _unpackaged(files, _package_data_globs())


def test_the_package_data_check_sees_a_file_left_out():
    assert _unpackaged(["report/templates/sections/x.html", "report/templates/y.html"], ["report/templates/*.html"]) == \
        ["report/templates/sections/x.html"]
