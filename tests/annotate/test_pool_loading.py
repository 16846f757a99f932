"""Loading the selection pool: PostgreSQL's packed path (one bytea per column per id range)
gives exactly what the general ORM path gives, over many ranges, both score sources, and the
pool rule's exclusions (test split, no answer, selected, suspect ground truth)."""

import contextlib

import numpy as np
import pytest
from django.conf import settings
from django.db import connection, transaction

from annotate import generations
from annotate.models import Checkpoint, Problem, Sample, Score, Selection
from tests.factories import make_generation, make_pool


@pytest.fixture
def pool_world(campaign):
    ids = make_pool(campaign, n_problems=5, per_problem=7)
    for pk in ids:
        Sample.objects.filter(pk=pk).update(verifier_score=(pk * 37 % 100) / 100)
    Sample.objects.filter(pk=ids[4]).update(verifier_score=None)  # scored by the checkpoint only
    checkpoint = Checkpoint.objects.create(campaign=campaign, name="c", path="/m/c")
    Score.objects.bulk_create(
        Score(sample_id=pk, checkpoint=checkpoint, score=(pk * 11 % 100) / 100) for pk in ids[::2]
    )
    Problem.objects.filter(unique_id="train/2").flag_suspect("all wrong")
    generation = make_generation(campaign, number=0)
    Selection.objects.create(
        generation=generation, sample_id=ids[3], rank=0, score=0.5, is_wrong=False
    )
    return campaign, checkpoint, ids


def _orm_path(*args, **kwargs):
    raise generations._OddRows


def _as_lists(pool: generations.Pool) -> dict:
    columns = {
        name: getattr(pool, name).tolist()
        for name in ("sample", "problem", "score", "wrong", "fingerprint")
    }
    keys = zip(pool.excluded_problems.tolist(), pool.excluded_fingerprints.tolist(), strict=True)
    return {**columns, "excluded": sorted(keys)}


@pytest.mark.parametrize("source", ["imported", "checkpoint"])
def test_packed_ranges_load_what_the_orm_path_loads(pool_world, monkeypatch, source):
    campaign, checkpoint, ids = pool_world
    scores = None if source == "imported" else checkpoint
    monkeypatch.setattr(generations, "POOL_ID_SPAN", 4)  # ~10 ranges, some of them empty
    packed = generations.load_pool(campaign, scores)
    with monkeypatch.context() as patch:
        patch.setattr(generations, "_load_pool_copy", _orm_path)
        general = generations.load_pool(campaign, scores)
    assert _as_lists(packed) == _as_lists(general)
    expected = [pk for pk in ids if pk != ids[3]]  # the selected one is out
    if source == "checkpoint":
        expected = [pk for pk in expected if pk in ids[::2]]  # only the scored ones
    else:
        expected.remove(ids[4])  # no imported score
    assert packed.sample.tolist() == expected
    assert np.all(np.diff(packed.sample) > 0), "import order, across ranges"
    suspect = set(Sample.objects.filter(problem__unique_id="train/2").values_list("pk", flat=True))
    assert not any(w for s, w in zip(packed.sample, packed.wrong, strict=True) if s in suspect)
    assert packed.wrong.any(), "wrong answers of trusted problems still count"


def test_a_malformed_steps_hash_falls_back_to_the_general_path(pool_world):
    campaign, _, ids = pool_world
    Sample.objects.filter(pk=ids[0]).update(steps_hash="not-hex")
    pool = generations.load_pool(campaign, None)
    assert ids[0] in pool.sample.tolist()
    assert len(set(pool.fingerprint.tolist())) == len(pool)


def test_an_empty_campaign_loads_an_empty_pool(campaign):
    pool = generations.load_pool(campaign, None)
    assert len(pool) == 0 and pool.sample.dtype == np.int64


class _Spy:
    """Wraps `snapshot_readers` and records how many readers each load got."""

    def __init__(self, real):
        self.real, self.counts = real, []

    @contextlib.contextmanager
    def __call__(self, cursor, wanted, **options):
        with self.real(cursor, wanted, **options) as readers:
            self.counts.append(len(readers))
            yield readers


# Exported snapshots are PostgreSQL's; elsewhere the pool loads through the ORM alone.
needs_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="snapshot sharing is PostgreSQL's"
)


@pytest.fixture
def readers_spy(monkeypatch):
    spy = _Spy(generations.snapshot_readers)
    monkeypatch.setattr(generations, "snapshot_readers", spy)
    return spy


@needs_postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("source", ["imported", "checkpoint"])
def test_connections_sharing_the_snapshot_load_what_one_connection_loads(
    pool_world, monkeypatch, readers_spy, source
):
    campaign, checkpoint, _ = pool_world
    scores = None if source == "imported" else checkpoint
    monkeypatch.setattr(generations, "POOL_ID_SPAN", 4)
    shared = generations.load_pool(campaign, scores)
    monkeypatch.setattr(settings, "STEPWISE_POOL_READERS", 1)
    alone = generations.load_pool(campaign, scores)
    assert readers_spy.counts == [2, 0]
    assert _as_lists(shared) == _as_lists(alone) and len(shared) > 0


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_a_transaction_that_has_written_reads_alone_and_sees_its_own_rows(pool_world, readers_spy):
    campaign, _, ids = pool_world
    template = Sample.objects.get(pk=ids[0])
    with transaction.atomic():
        template.pk, template.external_id, template.steps_hash = None, "fresh", "ab" * 16
        template.save()  # uncommitted: invisible to any other connection
        pool = generations.load_pool(campaign, None)
    assert readers_spy.counts == [0]
    assert template.pk in pool.sample.tolist()


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_open_generation_shares_its_snapshot_after_locking_the_campaign(
    pool_world, monkeypatch, readers_spy
):
    campaign, checkpoint, _ = pool_world
    monkeypatch.setattr(generations, "POOL_ID_SPAN", 4)
    with monkeypatch.context() as alone:
        alone.setattr(settings, "STEPWISE_POOL_READERS", 1)
        dry = generations.preview_selection(campaign, scores=checkpoint)
    _, opened = generations.open_generation(campaign, scores=checkpoint)
    assert readers_spy.counts == [0, 2]  # the row locks alone do not stop the sharing
    assert opened.sample.tolist() == dry.sample.tolist() and len(opened) > 0


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_open_generation_after_writes_in_its_callers_transaction_reads_alone(
    pool_world, readers_spy
):
    campaign, _, ids = pool_world
    campaign.strategy, campaign.k, campaign.wrong_fraction = "global", 1, 0.0
    campaign.save()
    fresh = Sample.objects.get(pk=ids[0])
    with transaction.atomic():
        fresh.pk, fresh.external_id, fresh.steps_hash = None, "fresh", "cd" * 16
        fresh.verifier_score = 2.0  # the best score: picked if the load sees it
        fresh.save()
        _, opened = generations.open_generation(campaign)
    assert readers_spy.counts == [0]
    assert opened.sample.tolist() == [fresh.pk]


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_a_callers_transaction_shares_and_a_savepoint_reads_alone(
    pool_world, monkeypatch, readers_spy
):
    # PostgreSQL exports no snapshot from a subtransaction: inside a savepoint, read alone.
    campaign, _, _ = pool_world
    monkeypatch.setattr(generations, "POOL_ID_SPAN", 4)
    with transaction.atomic():
        shared = generations.load_pool(campaign, None)
        with transaction.atomic():
            alone = generations.load_pool(campaign, None)
    assert readers_spy.counts == [2, 0]
    assert _as_lists(shared) == _as_lists(alone) and len(shared) > 0
