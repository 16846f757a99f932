"""A lead adding a checkpoint in the admin meets the same validation as register_checkpoint."""

from django.urls import reverse

from annotate.models import Checkpoint
from tests.selector.prm.published import qwen_prm_checkpoint


def add(client, path, **fields):
    data = {"name": "mine", "path": str(path), "adapter": "qwen-prm", "base_model": "", **fields}
    data.setdefault("trained_on_labels", "0")
    return client.post(reverse("admin:annotate_checkpoint_add"), data)


def test_a_published_prm_is_added(client, lead, tmp_path):
    client.force_login(lead)
    response = add(client, qwen_prm_checkpoint(tmp_path / "prm"))
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert Checkpoint.objects.get(name="mine").adapter == "qwen-prm"


def test_missing_head_weights_are_named_next_to_the_path(client, lead, tmp_path):
    client.force_login(lead)
    response = add(client, qwen_prm_checkpoint(tmp_path / "prm", drop=("score.2.weight",)))
    assert response.status_code == 200
    assert "score.2.weight" in " ".join(response.context["adminform"].form.errors["path"])
    assert not Checkpoint.objects.exists()
