"""Convert profile files of format version 1 to the current version (2), in place.

Usage::

    python -m envs.model.profile_migrate profiles/old.yaml [more.yaml ...] [--cap-stage chat]

Version 1 had one ``batch_sizes`` list for the whole pipeline; version 2 gives each stage
its own (`envs.model.profile_format`). The conversion is exact: every stage gets the old
list, so the migrated profile loads into the same pipeline and every simulation on it is
unchanged. ``--cap-stage NAME`` marks a stage's values as concurrency caps (``knob: cap``,
an LLM server's ``max_num_seqs``); they are batch sizes otherwise. The file keeps its YAML
layout (`envs.model.profile_doc.profile_text`'s style is recognised from the text), and is
rewritten only once the converted text loads.

Exit codes: 0 converted (or already current), 2 bad input (one line on stderr).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

from envs.config.cli import argument_parser, command_line
from envs.config.errors import ProfileError
from envs.config.yaml_io import read_yaml_file
from envs.model.profile_doc import ProfileStyle, stage_entry, write_profile
from envs.model.profile_format import FORMAT_VERSION, MIGRATE_COMMAND

PROG = MIGRATE_COMMAND


def migrated_document(path: Path, doc: Any, cap_stages: frozenset[str] = frozenset()
                      ) -> dict[str, Any]:
    """A version-1 profile document as a version-2 one (the input is not changed).

    Args:
        path: The file, for messages.
        doc: Its parsed YAML.
        cap_stages: Stages whose values are concurrency caps.

    Returns:
        The converted document (``format_version`` first, each stage's ``batch_sizes``
        after its name).

    Raises:
        ProfileError: Not a version-1 profile (no top-level ``batch_sizes`` list, no stage
            list), or a ``cap_stages`` name the profile lacks.
    """
    if not isinstance(doc, dict):
        raise ProfileError(f"{path}: not a profile (a YAML mapping); nothing to migrate")
    sizes = doc.get("batch_sizes")
    stages = doc.get("stages")
    if not isinstance(sizes, list) or not sizes or not isinstance(stages, list):
        raise ProfileError(f"{path}: not a version-1 profile (it needs a top-level "
                           f"'batch_sizes' list and 'stages'); nothing to migrate")
    names = [s.get("name") if isinstance(s, dict) else None for s in stages]
    unknown = sorted(cap_stages - set(names))
    if unknown:
        raise ProfileError(f"{path}: --cap-stage {unknown} is not a stage of this profile; "
                           f"stages: {names}")
    out: dict[str, Any] = {"format_version": FORMAT_VERSION}
    out.update((k, v) for k, v in doc.items() if k not in ("batch_sizes", "stages"))
    out["stages"] = [
        {**stage_entry(stage["name"], stage.get("variants"), sizes,
                       "cap" if stage["name"] in cap_stages else "batch"),
         **{k: v for k, v in stage.items() if k not in ("name", "variants")}}
        for stage in stages
    ]
    return out


def detected_style(text: str) -> ProfileStyle:
    """The `profile_text` style a profile file was written in.

    Args:
        text: The file's text.

    Returns:
        ``inline`` (mappings of scalars in flow style), ``rows`` (only lists of scalars
        in flow style) or ``block``.
    """
    if re.search(r"^hardware: \{", text, re.MULTILINE):
        return "inline"
    if re.search(r"^row_columns: \[", text, re.MULTILINE):
        return "rows"
    return "block"


def migrate_file(path: Path, cap_stages: frozenset[str] = frozenset()) -> bool:
    """Convert one file in place (a no-op when it is already current).

    Args:
        path: The profile file.
        cap_stages: Stages whose values are concurrency caps.

    Returns:
        True if the file was rewritten.

    Raises:
        ProfileError: A missing file, not a version-1 profile, or a converted text that
            does not load (the file is then left as it was).
    """
    if not path.is_file():
        raise ProfileError(f"{path} does not exist; give the path of a profile .yaml")
    doc = read_yaml_file(path)
    if isinstance(doc, dict) and doc.get("format_version") == FORMAT_VERSION:
        return False
    style = detected_style(path.read_text())
    write_profile(migrated_document(path, doc, cap_stages), path, style=style, check=True)
    return True


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line; see the module docstring.

    Args:
        argv: Arguments without the program name (default ``sys.argv[1:]``).

    Returns:
        The parsed arguments.
    """
    p = argument_parser(PROG, __doc__)
    p.add_argument("paths", nargs="+", type=Path, help="profile files to convert in place")
    p.add_argument("--cap-stage", action="append", default=[], metavar="NAME",
                   help="a stage whose values are concurrency caps (repeat)")
    return p.parse_args(argv)


@command_line(PROG)
def main(argv: list[str] | None = None) -> int:
    """Convert each file; print one line per file.

    Args:
        argv: Arguments without the program name (default ``sys.argv[1:]``).

    Returns:
        0 (errors exit 2 through `command_line`).
    """
    args = parse_args(argv)
    for path in args.paths:
        done = migrate_file(path, frozenset(args.cap_stage))
        print(f"{path}: {'converted to' if done else 'already'} format version "
              f"{FORMAT_VERSION}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
