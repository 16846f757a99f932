"""Admin lists at scale: exact counts for small lists, the planner's estimate for large ones,
and the sample list's filters never list every sample's values."""

import pytest
from django.db import connection

from annotate import admin_pagination
from annotate.admin_pagination import EstimatedCountPaginator, planner_rows
from annotate.models import Sample
from tests.factories import make_pool, person


def test_small_lists_count_exactly(campaign):
    make_pool(campaign, n_problems=3, per_problem=5)
    paginator = EstimatedCountPaginator(Sample.objects.order_by("pk"), 10)
    assert paginator.count == Sample.objects.count() == 20


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the estimate is PostgreSQL's planner's"
)
def test_large_lists_show_the_planners_estimate(campaign, monkeypatch):
    make_pool(campaign, n_problems=3, per_problem=5)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Sample._meta.db_table}")
    monkeypatch.setattr(EstimatedCountPaginator, "exact_below", 1)
    calls = []
    monkeypatch.setattr(
        admin_pagination, "planner_rows", lambda qs: calls.append(qs) or planner_rows(qs)
    )
    queryset = Sample.objects.filter(campaign=campaign).order_by("pk")
    paginator = EstimatedCountPaginator(queryset, 10)
    assert paginator.count == planner_rows(queryset) > 0
    assert calls, "the estimate, not count(*)"
    assert paginator.num_pages == -(-paginator.count // 10)


def test_the_sample_list_renders_without_a_generator_filter(campaign, client):
    make_pool(campaign, n_problems=2, per_problem=3)
    client.force_login(person("lead", is_staff=True, is_superuser=True))
    response = client.get("/admin/annotate/sample/")
    assert response.status_code == 200
    assert "By generator" not in response.text
    assert "external_id" in response.text or "train/0/0" in response.text
