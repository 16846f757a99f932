"""Helpers shared by the import/export commands: files, progress bars, campaigns."""

from __future__ import annotations

import contextlib
import io
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from django.core.management.base import CommandError
from django.db import transaction
from tqdm import tqdm

from annotate.io import ImportFailed, ImportSummary
from annotate.io.base import read_lines
from annotate.models import Campaign


def count_lines(path: str) -> int | None:
    """Lines in a file, counted in 1 MiB blocks (fast, constant memory); None for stdin."""
    if path == "-":
        return None
    count = 0
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            count += block.count(b"\n")
    return count


@contextlib.contextmanager
def open_input(path: str) -> Iterator[Iterator[str]]:
    """The file's (or stdin's) lines through `read_lines`, the reader API uploads use too."""
    if path == "-":
        # A test's StringIO stdin has no bytes underneath: encode it to read it the same way.
        binary = getattr(sys.stdin, "buffer", None) or io.BytesIO(sys.stdin.read().encode())
        yield read_lines(binary)
        return
    if not Path(path).is_file():
        raise CommandError(f"no such file: {path}")
    with open(path, "rb") as handle:
        yield read_lines(handle)


@contextlib.contextmanager
def open_output(path: str | None, stdout) -> Iterator[IO[str]]:
    if path in (None, "-"):
        yield stdout
        return
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        yield handle


@contextlib.contextmanager
def progress_bar(total: int | None, unit: str, disable: bool) -> Iterator[Callable[[int], None]]:
    bar = tqdm(total=total, unit=f" {unit}", file=sys.stderr, disable=disable)
    try:
        yield bar.update
    finally:
        bar.close()


def run_import(
    importer: Callable[..., ImportSummary], path: str, slug: str, *, quiet: bool, **kwargs
) -> tuple[ImportSummary, bool]:
    """Create the campaign if needed and import, all in one transaction: any error leaves the
    database as it was (the new campaign included)."""
    total = count_lines(path)
    try:
        with (
            open_input(path) as stream,
            progress_bar(total, "lines", quiet) as progress,
            transaction.atomic(),
        ):
            campaign, created = Campaign.objects.get_or_create(slug=slug, defaults={"name": slug})
            summary = importer(stream, campaign, progress=progress, **kwargs)
    except ImportFailed as exc:
        raise CommandError(str(exc)) from None
    return summary, created


def get_campaign(slug: str) -> Campaign:
    try:
        return Campaign.objects.get(slug=slug)
    except Campaign.DoesNotExist:
        raise CommandError(f'no campaign "{slug}"') from None
