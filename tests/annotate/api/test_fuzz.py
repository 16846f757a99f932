"""Schema-driven fuzzing: schemathesis generates requests for every operation in the OpenAPI
schema and sends them to the WSGI app in-process; no request may end in a 5xx.

Path parameters are drawn from the ids of real rows most of the time (a schemathesis
dictionary), so the fuzzing reaches the views' code and not only their 404s. The run is
bounded in examples per operation and in total time.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig

from annotate.models import Assignment, Checkpoint, Generation
from config.wsgi import application
from tests.factories import token_client

MAX_EXAMPLES = 8
TIME_BUDGET_S = 60.0


@pytest.fixture
def keep_test_connection():
    """Serve WSGI requests inside the test transaction, as Django's test client does.

    The WSGI handler closes "old" connections when a request starts and finishes; inside a
    test transaction that would close the test's own connection.
    """
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


@pytest.fixture
def fuzz_world(keep_test_connection, lead, campaign, problem, sample, tmp_path):
    sample.verifier_score = 0.3
    sample.save(update_fields=["verifier_score"])
    generation = Generation.objects.create(campaign=campaign, number=0)
    assignment = Assignment.objects.create(
        generation=generation, sample=sample, labeler=lead, state=Assignment.State.IN_PROGRESS
    )
    weights = tmp_path / "weights"
    weights.mkdir()
    checkpoint = Checkpoint.objects.create(campaign=campaign, name="fuzz", path=str(weights))
    token = token_client(lead)._credentials["HTTP_AUTHORIZATION"]
    return {
        "token": token,
        "slugs": [campaign.slug],
        "ids": [problem.pk, sample.pk, checkpoint.pk, assignment.pk],
        "numbers": [generation.number],
    }


def load_schema(fuzz_world):
    """The live schema, fetched from the app itself with a staff token."""
    config = SchemathesisConfig.from_dict(
        {
            "dictionaries": {
                "slugs": {"values": fuzz_world["slugs"]},
                "ids": {"values": fuzz_world["ids"]},
                "numbers": {"values": fuzz_world["numbers"]},
            },
            "parameters": {
                "path.slug": {"dictionary": "slugs", "probability": 0.8},
                "path.id": {"dictionary": "ids", "probability": 0.8},
                "path.number": {"dictionary": "numbers", "probability": 0.8},
            },
        }
    )
    return schemathesis.openapi.from_wsgi(
        "/api/v1/schema/?format=json",
        application,
        config=config,
        headers={"Authorization": fuzz_world["token"]},
    )


@pytest.mark.django_db
@pytest.mark.slow
def test_no_server_errors(fuzz_world) -> None:
    schema = load_schema(fuzz_world)
    headers = {"Authorization": fuzz_world["token"]}
    statuses: Counter[int] = Counter()
    started = time.monotonic()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20, "the schema lost operations"
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=MAX_EXAMPLES,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def fuzz(case) -> None:
                response = case.call(headers=headers)
                statuses[response.status_code] += 1
                case.validate_response(response, checks=[not_a_server_error], headers=headers)

            try:
                fuzz()
            except Unsatisfiable:
                # Negative mode on an operation with nothing to break (e.g. one string path
                # parameter): no invalid request exists, so there is nothing to send.
                assert mode is GenerationMode.NEGATIVE, operation.label
    elapsed = time.monotonic() - started
    assert elapsed < TIME_BUDGET_S, f"fuzzing took {elapsed:.0f} s"
    assert not any(code >= 500 and code != 501 for code in statuses), statuses
    # The dictionaries steer most paths to real rows: successes, not only 404s.
    assert statuses[200] + statuses[201] > 0, statuses
    print(f"fuzzed {sum(statuses.values())} requests in {elapsed:.1f} s: {dict(statuses)}")
