"""The ``pricecurate`` command: parse, run the sub-command, and turn any error into one line and an exit code."""

from __future__ import annotations

import sys
import traceback

from pricecurate.cli import commands
from pricecurate.cli.parser import build_parser
from pricecurate.errors import UserError
from pricecurate.masking import redact_text


def main(argv: list[str] | None = None) -> int:
    from pricecurate.spark.noise import silence_libraries

    args = build_parser().parse_args(argv)
    if not getattr(args, "verbose", False):
        silence_libraries()
    handler = commands.BY_NAME[args.command]
    try:
        return handler(args)
    except UserError as exc:
        if getattr(args, "verbose", False):
            traceback.print_exc()
        print(f"pricecurate: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, not a wall of JVM frames
        if getattr(args, "verbose", False):
            traceback.print_exc()
        first_line = (str(exc).strip().splitlines() or [""])[0][:500]
        print(f"pricecurate: error: {type(exc).__name__}: {redact_text(first_line)}"
              + ("" if getattr(args, "verbose", False) else " (rerun with --verbose for the traceback)"),
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
