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


def run(*args) -> None:
    call_command(*args, stdout=io.StringIO(), stderr=io.StringIO())


def test_problem_and_sample_imports_analyze_what_they_loaded(tmp_path):
    problems, samples = cot_problems_and_samples(20)
    (tmp_path / "problems.jsonl").write_bytes(jsonl(problems))
    (tmp_path / "samples.jsonl").write_bytes(jsonl(samples))
    assert estimated_rows(Sample) <= 0
    run("import_problems", str(tmp_path / "problems.jsonl"), "--campaign", "stats")
    assert estimated_rows(Problem) == Problem.objects.count() == 20
    run("import_samples", str(tmp_path / "samples.jsonl"), "--campaign", "stats")
    assert estimated_rows(Sample) == Sample.objects.count() == len(samples)


def test_a_prm800k_import_analyzes_its_labels():
    run("import_prm800k", str(DATA_DIR / "prm800k_examples.jsonl"), "--campaign", "p")
    assert estimated_rows(Label) == Label.objects.count() > 0
