"""Builders for the generation-pipeline tests: problems and a configured generator."""

from __future__ import annotations

from annotate.models import Campaign, Problem


def make_problems(campaign: Campaign, n: int = 3, answer: str = "1") -> list[Problem]:
    """`n` train problems whose ground truth is `answer`, and one test problem (never
    generated for)."""
    problems = [
        Problem.objects.create(
            campaign=campaign,
            unique_id=f"gen/{i}",
            problem=f"What is ${i} + 1 - {i}$?",
            ground_truth_answer=answer,
        )
        for i in range(n)
    ]
    Problem.objects.create(
        campaign=campaign,
        unique_id="gen/test",
        problem="A held-out problem.",
        ground_truth_answer="0",
        split="test",
    )
    return problems


def configure(campaign: Campaign, url: str, *, n: int = 3, **fields) -> Campaign:
    """The campaign's generator: a server at `url`, N solutions per problem."""
    settings = {
        "generator_base_url": url,
        "generator_model": "fake",
        "generator_n": n,
        "generator_max_tokens": 32,
        "generator_concurrency": 2,
        **fields,
    }
    for name, value in settings.items():
        setattr(campaign, name, value)
    campaign.full_clean()
    campaign.save()
    return campaign
