"""The `conformance` console script: the arguments parsed first with the light parser (app/parser.py), so that
`--help`, `--version` and a mistyped command answer without importing a framework, NumPy's extended dtypes or the
layers below; the command itself then runs in app/cli.py."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from .parser import build_parser

    args = build_parser().parse_args(argv)
    from .cli import dispatch  # the commands, and everything they run on

    return dispatch(args)


if __name__ == "__main__":
    sys.exit(main())
