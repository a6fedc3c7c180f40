"""`python -m insights_core.store copy --to ducklake [--replace]`: move the embedded store into the lake.

Prints, per table, the row count and checksum on both sides; exits 0 when they all match, 1 when
one differs, 2 when nothing was copied (the lake holds rows, a setting is missing).
"""

from __future__ import annotations

import argparse
import sys

from insights_core.errors import InsightsError
from insights_core.settings import load_settings
from insights_core.store.copy import copy_to_lake


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m insights_core.store", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    copy = commands.add_parser(
        "copy", help="copy the embedded store (INSIGHTS_DATA_DIR) into the lake (INSIGHTS_CATALOG_URL)"
    )
    copy.add_argument("--to", choices=["ducklake"], required=True, help="the target store")
    copy.add_argument("--replace", action="store_true", help="delete the lake's rows first (in the same commit)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        checks = copy_to_lake(settings, replace=args.replace)
    except InsightsError as exc:
        print(f"copy: {exc}", file=sys.stderr)
        return 2
    print(f"{'table':<28} {'embedded rows':>14} {'lake rows':>10}  {'embedded checksum':>40}  {'lake checksum':>40}")
    for c in checks:
        mark = "" if c.matches else "  DIFFERENT"
        print(
            f"{c.table:<28} {c.source_rows:>14} {c.lake_rows:>10}  {c.source_checksum:>40}  {c.lake_checksum:>40}{mark}"
        )
    same = all(c.matches for c in checks)
    print("copy: both stores hold the same rows" if same else "copy: the stores differ", file=sys.stderr)
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
