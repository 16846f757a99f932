"""The validation hold-out: stable as problems are added, so every checkpoint of a campaign is
compared on problems none of them trained on."""

from selector.training.splits import unit_hash, validation_keys


def test_membership_never_changes_as_keys_are_added():
    keys = [f"problem {i}" for i in range(400)]
    first = validation_keys(keys[:100], 0.2)
    grown = validation_keys(keys, 0.2)
    assert first == grown & set(keys[:100])
    assert 0.15 < len(grown) / len(keys) < 0.25
    assert all(unit_hash(k) < 0.2 for k in grown)


def test_small_sets_hold_out_one_but_never_all():
    assert validation_keys(["only"], 0.2) == set()
    assert validation_keys(["a", "b"], 0.0) == set()
    pair = validation_keys(["a", "b"], 0.2)
    assert len(pair) == 1
    assert len(validation_keys(["a", "b", "c"], 0.999)) == 2
