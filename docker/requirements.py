"""Print the project's pinned runtime requirements from pyproject.toml, one per line.

The images install from this list instead of `pip install .`, so pins live in one place.
`--without-ml` leaves out the model stack (torch, transformers…): the web process never
imports it, and its image stays small.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path

ML_PACKAGES = {"torch", "transformers", "tokenizers", "safetensors"}


def requirement_name(requirement: str) -> str:
    """`psycopg[binary]==3.3.9` -> `psycopg` (PEP 503 normalized)."""
    name = re.split(r"[\[<>=!~; ]", requirement.strip(), maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements(pyproject: Path, without_ml: bool = False) -> list[str]:
    with pyproject.open("rb") as handle:
        deps = tomllib.load(handle)["project"]["dependencies"]
    return [dep for dep in deps if not (without_ml and requirement_name(dep) in ML_PACKAGES)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pyproject", type=Path, default=Path("pyproject.toml"))
    parser.add_argument("--without-ml", action="store_true")
    args = parser.parse_args(argv)
    sys.stdout.write("".join(f"{dep}\n" for dep in requirements(args.pyproject, args.without_ml)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
