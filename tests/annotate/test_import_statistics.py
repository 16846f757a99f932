"""Imports leave PostgreSQL's planner statistics fresh: with none after a bulk load the pool
query's plan depends on luck (a nested loop rescanning the samples once per problem)."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.db import connection

from annotate.models import Label, Problem, Sample
from tests.factories import DATA_DIR, cot_problems_and_samples, jsonl

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="planner statistics are PostgreSQL's"
    ),
    pytest.mark.django_db(transaction=True),
]


def estimated_rows(model) -> float:
    """pg_class.reltuples: -1 until the table was first analyzed (PostgreSQL 14+)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [model._meta.db_table]
        )
        return cursor.fetchone()[0]


def database_now():
    with connection.cursor() as cursor:
        cursor.execute("SELECT now()")
        return cursor.fetchone()[0]


def vacuumed_and_analyzed_since(model, moment) -> tuple[bool, bool]:
    """Whether a VACUUM and an ANALYZE (run by a command, not autovacuum) came after `moment`."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(last_vacuum >= %s, false), coalesce(last_analyze >= %s, false) "
            "FROM pg_stat_user_tables WHERE relid = %s::regclass",
            [moment, moment, model._meta.db_table],
        )
        return tuple(cursor.fetchone())


def all_visible_pages(model) -> tuple[int, int]:
    """(pages, pages marked all-visible): VACUUM sets the latter, index-only scans need it."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relpages, relallvisible FROM pg_class WHERE oid = %s::regclass",
            [model._meta.db_table],
        )
        return cursor.fetchone()


def run(*args) -> None:
    call_command(*args, stdout=io.StringIO(), stderr=io.StringIO())


def test_problem_and_sample_imports_analyze_what_they_loaded(tmp_path):
    problems, samples = cot_problems_and_samples(20)
    (tmp_path / "problems.jsonl").write_bytes(jsonl(problems))
    (tmp_path / "samples.jsonl").write_bytes(jsonl(samples))
    before = database_now()
    run("import_problems", str(tmp_path / "problems.jsonl"), "--campaign", "stats")
    assert estimated_rows(Problem) == Problem.objects.count() == 20
    assert vacuumed_and_analyzed_since(Sample, before) == (False, False)
    run("import_samples", str(tmp_path / "samples.jsonl"), "--campaign", "stats")
    assert vacuumed_and_analyzed_since(Sample, before) == (True, True)
    assert estimated_rows(Sample) == Sample.objects.count() == len(samples)
    pages, visible = all_visible_pages(Sample)
    assert visible == pages > 0


def test_a_prm800k_import_analyzes_its_labels():
    run("import_prm800k", str(DATA_DIR / "prm800k_examples.jsonl"), "--campaign", "p")
    assert estimated_rows(Label) == Label.objects.count() > 0
