"""Entry point run inside a staging directory: mutmut's CLI with the project's choice of string mutants.

mutmut makes three mutants of every string literal (``XX..XX``, lower case, upper case); the case swaps ask the same
question as the first (does any test observe this string?) and would triple the run, so only ``XX..XX`` is kept.
Besides ``run`` it offers ``pending OUT GLOB...`` (generate the mutants, write the undecided ones matching the globs to
OUT as JSON) and ``diffs OUT NAME...`` (write each named mutant's diff to OUT as JSON); mutmut prints progress on
stdout, hence the files. The tool uses them to resume and to report.
"""

from __future__ import annotations

import fnmatch
import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, cast

import libcst as cst


def _patch_string_operator() -> None:
    from mutmut.mutation import mutators

    original = mutators.operator_string

    def first_only(node: cst.BaseString) -> Iterator[cst.BaseString]:
        for mutant in original(node):
            yield mutant
            return

    operators = cast("list[Any]", mutators.mutation_operators)  # a list at runtime; file_mutation holds the same one
    operators[:] = [
        (kind, first_only if operator is original else operator) for kind, operator in mutators.mutation_operators
    ]


def _pending(patterns: Iterable[str]) -> list[str]:
    from mutmut.__main__ import create_mutants
    from mutmut.configuration import config
    from mutmut.mutation.data import SourceFileMutationData
    from mutmut.utils.file_utils import copy_also_copy_files, copy_src_dir, setup_source_paths, walk_mutatable_files

    Path("mutants").mkdir(exist_ok=True)
    copy_src_dir()
    copy_also_copy_files()
    setup_source_paths()
    create_mutants(1)
    globs = list(patterns) or ["*"]
    names: list[str] = []
    for path in walk_mutatable_files():
        if not config().should_mutate(path):
            continue
        data = SourceFileMutationData(path=path)
        data.load()
        names += [
            key
            for key, code in data.exit_code_by_key.items()
            if code is None and any(fnmatch.fnmatch(key, glob) for glob in globs)
        ]
    return sorted(names)


def _diffs(names: Iterable[str]) -> dict[str, str]:
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    out: dict[str, str] = {}
    for name in names:
        try:
            out[name] = get_diff_for_mutant(name)
        except Exception as exc:  # noqa: BLE001 - a missing diff must not lose the report
            out[name] = f"(no diff: {exc!r})"
    return out


def main(argv: list[str]) -> int:
    """``run ...`` (mutmut's CLI), ``pending OUT GLOB...`` or ``diffs OUT NAME...``."""
    _patch_string_operator()
    if argv[:1] == ["pending"]:
        Path(argv[1]).write_text(json.dumps(_pending(argv[2:])))
        return 0
    if argv[:1] == ["diffs"]:
        Path(argv[1]).write_text(json.dumps(_diffs(argv[2:])))
        return 0
    from mutmut.__main__ import cli

    cli.main(args=argv, prog_name="mutmut", standalone_mode=True)
    return 0


if __name__ == "__main__":
    if sys.path and Path(sys.path[0]).resolve() == Path(__file__).parent.resolve():
        del sys.path[0]  # this folder's modules must not shadow anything the tests import
    sys.exit(main(sys.argv[1:]))
