"""Automatic label sources: `import_labels`, consensus with the labelers, routing, training."""

import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.template.loader import render_to_string

from annotate import consensus
from annotate.io.prm800k import iter_prm800k_lines
from annotate.models import Assignment, LabelSource, QualitySettings, Review, SourceLabel
from tests.factories import finished_label, overlap_campaign, person
from workers.training_data import campaign_training_examples

pytestmark = pytest.mark.django_db


def write(tmp_path, lines) -> str:
    path = tmp_path / "labels.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return str(path)


def import_labels(path, campaign, source) -> str:
    out = io.StringIO()
    call_command("import_labels", path, "--campaign", campaign.slug, "--source", source, stdout=out)
    return out.getvalue()


MC = {"rollouts": 8, "completer": "Qwen2.5-Math-7B-Instruct"}
JUDGE = {"judge": "gpt-4o", "critique": "Step 2 squares wrongly."}


@pytest.fixture
def pool(campaign):
    generation, samples = overlap_campaign(campaign)
    return campaign, generation, samples


def test_import_hard_and_soft_labels_with_provenance(tmp_path, pool):
    campaign, _, samples = pool
    soft = [
        {"sample": samples[0].external_id, "scores": [0.9, 0.25, 0.0], "provenance": MC},
        {"sample": samples[1].external_id, "scores": [1, 1, 1, 0.75], "provenance": MC},
    ]
    assert "2 labels" in import_labels(write(tmp_path, soft), campaign, "mc")
    hard = [{"sample": samples[0].external_id, "ratings": [1, -1], "provenance": JUDGE}]
    import_labels(write(tmp_path, hard), campaign, "judge")

    mc = LabelSource.objects.get(campaign=campaign, name="mc")
    assert mc.kind == "soft" and not mc.show_to_labelers and not mc.use_for_training
    stored = SourceLabel.objects.get(source=mc, sample=samples[0])
    assert stored.scores == [0.9, 0.25, 0.0] and stored.ratings is None
    assert stored.provenance == MC
    judged = SourceLabel.objects.get(source__name="judge")
    assert judged.ratings == [1, -1] and judged.provenance["critique"] == JUDGE["critique"]

    # Importing again replaces a sample's label from that source.
    again = [{"sample": samples[0].external_id, "scores": [1, 1, 1, 1], "provenance": MC}]
    assert "1 replaced" in import_labels(write(tmp_path, again), campaign, "mc")
    assert SourceLabel.objects.get(source=mc, sample=samples[0]).scores == [1.0] * 4


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"scores": [0.5, 1.5]}, 'line 3: field "scores[1]" must lie in [0, 1]'),
        ({"ratings": [1, 2]}, 'line 3: field "ratings[1]" must be -1, 0 or 1'),
        ({"ratings": [1], "scores": [1.0]}, "line 3: give exactly one of"),
        (
            {"scores": [0.5], "provenance": {"completer": "m"}},
            'missing field "provenance.rollouts"',
        ),
        ({"scores": [0.5] * 5}, "line 3: 5 step labels but the sample has 4 steps"),
        ({"scores": [0.5], "sample": "nope"}, 'line 3: unknown sample "nope"'),
        ({"ratings": [1]}, 'line 3: source "mc" has soft labels, not hard'),
        ({"scores": [0.5], "extra": 1}, 'line 3: unexpected field "extra"'),
    ],
)
def test_a_bad_line_fails_the_whole_import_with_its_number(tmp_path, pool, bad, message):
    campaign, _, samples = pool
    good = {"sample": samples[0].external_id, "scores": [0.5], "provenance": MC}
    line = {"sample": samples[2].external_id, "provenance": MC, **bad}
    path = write(tmp_path, [good, {**good, "sample": samples[1].external_id}, line])
    with pytest.raises(CommandError, match=message.replace("[", r"\[").replace("]", r"\]")):
        import_labels(path, campaign, "mc")
    assert not SourceLabel.objects.exists() and not LabelSource.objects.exists()


def test_duplicate_samples_and_reserved_names_are_refused(tmp_path, pool):
    campaign, _, samples = pool
    line = {"sample": samples[0].external_id, "ratings": [1]}
    with pytest.raises(CommandError, match=r"line 2: sample .* is also on line 1"):
        import_labels(write(tmp_path, [line, line]), campaign, "judge-x")
    with pytest.raises(CommandError, match="source name"):
        import_labels(write(tmp_path, [line]), campaign, "human")


@pytest.fixture
def mixed(tmp_path, pool):
    """Sample 0: human, mc and judge all say step 2. Sample 1: human none, mc none, judge
    step 3. Sample 2: mc only. Sample 3: human only."""
    campaign, generation, samples = pool
    a = person("a", campaign)
    finished_label(a, samples[0], generation, [1, -1], "found_error")
    finished_label(a, samples[1], generation, [1, 1, 1, 1], "solution")
    finished_label(a, samples[3], generation, [1, 1, 1, 1], "solution")
    mc = [
        {"sample": samples[0].external_id, "scores": [0.8, 0.1, 0.0, 0.0], "provenance": MC},
        {"sample": samples[1].external_id, "scores": [0.9, 0.9, 0.6, 0.5], "provenance": MC},
        {"sample": samples[2].external_id, "scores": [0.9, 0.4], "provenance": MC},
    ]
    import_labels(write(tmp_path, mc), campaign, "mc")
    judge = [
        {"sample": samples[0].external_id, "ratings": [1, -1], "provenance": JUDGE},
        {"sample": samples[1].external_id, "ratings": [1, 1, -1], "provenance": JUDGE},
    ]
    import_labels(write(tmp_path, judge), campaign, "judge")
    return campaign, generation, samples


def test_consensus_keeps_exactly_the_agreeing_samples(mixed):
    campaign, _, samples = mixed
    errors = consensus.first_errors(campaign)
    assert errors[samples[0].pk] == {"human": 1, "mc": 1, "judge": 1}
    assert errors[samples[1].pk] == {"human": None, "mc": None, "judge": 2}
    assert consensus.consensus_samples(campaign) == {samples[0].pk}
    assert consensus.disagreement_samples(campaign) == {samples[1].pk}
    # Between mc and the labelers only, sample 1 agrees too.
    assert consensus.consensus_samples(campaign, sources=["human", "mc"]) == {
        samples[0].pk,
        samples[1].pk,
    }
    lines = list(iter_prm800k_lines(campaign, consensus_only=True))
    assert len(lines) == 1


def test_training_uses_the_chosen_sources_and_the_consensus_setting(mixed):
    campaign, _, _samples = mixed
    human = sorted(e.ratings for e in campaign_training_examples(campaign))
    assert human == [[1, -1], [1, 1, 1, 1], [1, 1, 1, 1]]
    LabelSource.objects.filter(name="judge").update(use_for_training=True)
    LabelSource.objects.filter(name="mc").update(use_for_training=True)
    both = sorted(e.ratings for e in campaign_training_examples(campaign))
    # mc's soft scores become +1 / −1 at 0.5, cut after the first error like any example.
    assert both == sorted([*human, [1, -1], [1, 1, 1, 1], [1, -1], [1, -1], [1, 1, -1]])
    QualitySettings.objects.create(campaign=campaign, train_on_consensus_only=True)
    only = sorted(e.ratings for e in campaign_training_examples(campaign))
    assert only == [[1, -1], [1, -1], [1, -1]]  # sample 0 from the labeler, mc and judge


def test_disagreements_route_to_labeling_or_review(mixed):
    campaign, generation, samples = mixed
    assert consensus.route_disagreements(campaign) == 1
    slot = Assignment.objects.unclaimed().get()
    assert slot.sample == samples[1] and slot.generation == generation
    assert consensus.route_disagreements(campaign) == 0  # a live slot is waiting already
    assert consensus.route_disagreements(campaign, to="review") == 1
    item = Review.objects.pending().get()
    assert item.sample == samples[1] and item.reason == Review.Reason.SOURCES
    assert item.labels.count() == 1


def test_labelers_see_a_source_only_when_the_campaign_shows_it(mixed):
    _campaign, _, samples = mixed
    assert consensus.suggestions(samples[0].pk) == []  # off by default
    LabelSource.objects.filter(name="judge").update(show_to_labelers=True)
    shown = consensus.suggestions(samples[0].pk)
    assert shown == [consensus.Suggestion("judge", 1)]
    html = render_to_string("review/_suggestions.html", {"suggestions": shown})
    assert "judge: first error at step 2" in html


def test_select_strategy_disagreement_opens_slots_for_disagreeing_samples(mixed):
    campaign, generation, samples = mixed
    out = io.StringIO()
    call_command(
        "select", "--campaign", campaign.slug, "--strategy", "disagreement", "--dry-run", stdout=out
    )
    assert "Would route 1 disagreeing samples" in out.getvalue()
    assert not Assignment.objects.unclaimed().exists()
    out = io.StringIO()
    call_command("select", "--campaign", campaign.slug, "--strategy", "disagreement", stdout=out)
    assert "Opened 1 slots" in out.getvalue()
    assert Assignment.objects.unclaimed().get().sample == samples[1]
    generation.complete()
    with pytest.raises(CommandError, match="no open generation"):
        call_command("select", "--campaign", campaign.slug, "--strategy", "disagreement")
