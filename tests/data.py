"""The real data the tests read: `data/` in the repository (sources in data/README.md)."""

from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
