"""Helpers shared by the API tests: clients per persona, JSONL bodies, real data."""

from __future__ import annotations

import json
from collections.abc import Iterable

from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.data import DATA_DIR

JSONL = "application/x-ndjson"
API = "/api/v1"

DATA = DATA_DIR
COT = DATA / "math_cot_samples.jsonl"


def jsonl(records: Iterable[dict]) -> bytes:
    return "".join(json.dumps(record) + "\n" for record in records).encode("utf-8")


def session_client(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_login(user)
    return client


def token_client(user) -> APIClient:
    token, _ = Token.objects.get_or_create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def cot_records(n_problems: int) -> list[dict]:
    """The first problems of the real MATH CoT sample file (8 model solutions each)."""
    out = []
    with COT.open(encoding="utf-8") as handle:
        for line in handle:
            out.append(json.loads(line))
            if len(out) == n_problems:
                break
    return out


def cot_problems_and_samples(n_problems: int) -> tuple[list[dict], list[dict]]:
    """Upload bodies from real data: problems, and samples with a made-up verifier score
    that ranks each problem's solutions in file order (deterministic, distinct)."""
    problems, samples = [], []
    for record in cot_records(n_problems):
        uid = f"cot/{record['idx']}"
        problems.append(
            {
                "unique_id": uid,
                "problem": record["problem"],
                "ground_truth_answer": record["ground_truth_answer"],
                "ground_truth_solution": record["ground_truth_solution"],
                "level": record["level"],
            }
        )
        for j, sample in enumerate(record["samples"]):
            samples.append(
                {
                    "id": f"{uid}#{j}",
                    "unique_id": uid,
                    "response": sample["response"],
                    "generator": "math-cot",
                    "verifier_score": round(0.9 - 0.1 * j, 3),
                }
            )
    return problems, samples
