"""`generate`: N per problem outside the loop, keyed (problem, index), resumable."""

import json

import pytest
from django.core.management import CommandError, call_command

from annotate.models import Sample
from tests.factories import make_problems

pytestmark = pytest.mark.django_db


def run(*args) -> dict:
    from io import StringIO

    out, err = StringIO(), StringIO()
    call_command("generate", *args, "--json", stdout=out, stderr=err)
    return json.loads(out.getvalue())


def test_generate_command_stores_graded_samples_and_tops_up_without_duplicates(
    campaign, fake_server
):
    problems = make_problems(campaign, 2)
    args = ["--campaign", campaign.slug, "--server", fake_server.url, "--model", "fake"]
    summary = run(*args, "--n", "2", "--max-tokens", "16", "--concurrency", "1")
    assert summary["stored"] == summary["total"] == 4 and summary["correct"] == 2
    rows = Sample.objects.filter(generation__isnull=True, index__isnull=False)
    assert sorted(rows.values_list("problem__unique_id", "index")) == [
        (p.unique_id, i) for p in problems for i in range(2)
    ]
    assert fake_server.requests[0]["max_tokens"] == 16

    again = run(*args, "--n", "3")
    assert again["stored"] == 2 and again["total"] == 6
    assert rows.count() == 6 == Sample.objects.count()


def test_generate_command_takes_a_problem_list(campaign, fake_server, tmp_path):
    make_problems(campaign, 3)
    listing = tmp_path / "problems.txt"
    listing.write_text('gen/2\n{"unique_id": "gen/0"}\n')
    summary = run(
        "--campaign", campaign.slug, "--server", fake_server.url, "--model", "m",
        "--n", "1", "--problems", str(listing),
    )  # fmt: skip
    assert summary["problems"] == 2
    assert sorted(Sample.objects.values_list("problem__unique_id", flat=True)) == ["gen/0", "gen/2"]


def test_generate_command_refuses_what_it_cannot_run(campaign):
    make_problems(campaign, 1)
    with pytest.raises(CommandError, match="no model"):
        run("--campaign", campaign.slug, "--n", "1")
    with pytest.raises(CommandError, match="no campaign"):
        run("--campaign", "nope", "--n", "1")
    with pytest.raises(CommandError, match="unknown problems"):
        call_command(
            "generate", "--campaign", campaign.slug, "--n", "1", "--server", "http://x/v1",
            "--model", "m", "--problems", __file__,
        )  # fmt: skip


def test_generate_command_with_a_local_model(campaign, tiny_causal_lm):
    make_problems(campaign, 1)
    summary = run(
        "--campaign", campaign.slug, "--local", str(tiny_causal_lm), "--n", "2",
        "--max-tokens", "4", "--temperature", "0",
    )  # fmt: skip
    assert summary["total"] == 2
    assert Sample.objects.filter(generator=f"local:{tiny_causal_lm}").count() == 2


def test_generate_help_shows_the_defaults(capsys):
    with pytest.raises(SystemExit):
        call_command("generate", "--help")
    text = capsys.readouterr().out
    assert "--n N" in text and "(1024 unless changed)" in text and "--local PATH" in text
