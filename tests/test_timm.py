"""timm models through transformers' TimmWrapper: a tiny timm architecture built from config, a timm
Hub id from the HF cache, and a timm architecture name with a local weights file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from hftl import ConfigError, ModelNotFoundError, finetune

from .test_image import TINY, image_folder, pipeline_labels  # noqa: F401 - the fixture
from .test_methods import STANDALONE_METHODS, StateSnapshot, check_lora_on_pointwise_convs

timm = pytest.importorskip("timm")
ARCH = "test_efficientnet"  # timm's own tiny test model (100k parameters)
TIMM = dict(TINY, image_size=32, learning_rate=1e-2)


def save_timm_wrapper(folder: Path, architecture: str) -> str:
    """A TimmWrapper checkpoint with a 1000-class ImageNet-style head, as transformers saves it."""
    from transformers import TimmWrapperConfig, TimmWrapperForImageClassification

    torch.manual_seed(0)
    pretrained_cfg = dict(timm.create_model(architecture, pretrained=False).pretrained_cfg)
    TimmWrapperForImageClassification(
        TimmWrapperConfig(architecture=architecture, pretrained_cfg=pretrained_cfg)
    ).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def tiny_timm(tmp_path_factory):
    return save_timm_wrapper(tmp_path_factory.mktemp("timm"), ARCH)


def changed_state(model, before: dict) -> set[str]:
    """Names in ``before`` (a state_dict: parameters AND buffers such as BatchNorm running statistics)
    whose tensor in ``model`` is no longer bit-equal."""
    after = model.state_dict()
    return {name for name, tensor in before.items() if not torch.equal(tensor, after[name].detach().cpu())}


@pytest.mark.parametrize("method", STANDALONE_METHODS)
def test_each_method_trains_the_right_parameters_and_round_trips(tiny_timm, image_folder, tmp_path, method):  # noqa: F811
    from transformers import AutoModelForImageClassification, TrainerCallback

    class Snapshot(TrainerCallback):
        def on_train_begin(self, args, state, control, model=None, **kwargs):
            self.before = {n: t.detach().cpu().clone() for n, t in model.state_dict().items()}

    snapshot = Snapshot()
    result = finetune(
        task="image-classification",
        model=tiny_timm,
        dataset=str(image_folder),
        method=method,
        output_dir=str(tmp_path / "out"),
        callbacks=[snapshot],
        **TIMM,
    )
    model = result.trainer.model
    changed = changed_state(model, snapshot.before)  # parameters and buffers
    moved = {n for n, p in model.named_parameters() if n in changed}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert moved and moved <= trainable
    if method == "linear-probe":
        # the frozen backbone stays bit-equal, BatchNorm running statistics included
        assert any("running_mean" in n for n in snapshot.before)
        assert changed == {"timm_model.classifier.weight", "timm_model.classifier.bias"}
    if method == "lora":
        assert all("lora_" in n or "modules_to_save" in n for n in trainable)
        assert any("classifier" in n for n in moved)
    config = json.loads((result.output_dir / "config.json").read_text())
    assert config["num_classes"] == 3 and config["label_names"] == ["blue", "green", "red"]
    batch = torch.randn(2, 3, 32, 32)
    reloaded = AutoModelForImageClassification.from_pretrained(result.output_dir).eval()
    with torch.no_grad():
        torch.testing.assert_close(
            reloaded(pixel_values=batch).logits,
            model.eval().cpu()(pixel_values=batch).logits,
            atol=1e-5,
            rtol=0,
        )


# test_efficientnet: depthwise 3x3 and pointwise 1x1 convs; test_resnet: 3x3 and 1x1 convs, groups 1
@pytest.mark.parametrize("architecture", ["test_efficientnet", "test_resnet"])
def test_lora_on_timm_cnns_adapts_exactly_the_pointwise_convs(architecture, image_folder, tmp_path):  # noqa: F811
    snapshot = StateSnapshot()
    result = finetune(
        task="image-classification",
        model=save_timm_wrapper(tmp_path / "model", architecture),
        dataset=str(image_folder),
        method="lora",
        output_dir=str(tmp_path / "out"),
        callbacks=[snapshot],
        **TIMM,
    )
    check_lora_on_pointwise_convs(result.trainer.model, snapshot.before)


def test_pipeline_on_a_timm_output_names_labels(run_forked, tiny_timm, image_folder, tmp_path):  # noqa: F811
    result = finetune(
        task="image-classification",
        model=tiny_timm,
        dataset=str(image_folder),
        output_dir=str(tmp_path / "out"),
        **TIMM,
    )
    labels = pipeline_labels(run_forked, result.output_dir, image_folder / "red" / "3.png")
    assert labels == {"blue", "green", "red"}
    processor = json.loads((result.output_dir / "config.json").read_text())["pretrained_cfg"]
    assert processor["input_size"] == [3, 32, 32]  # the trained size, so pipeline() resizes the same way


def _put_in_hf_cache(repo_id: str, files: Path) -> None:
    """Lay out a model like huggingface_hub's cache does after a download."""
    import os
    import shutil

    cache = Path(os.environ["HF_HOME"]) / "hub" / f"models--{repo_id.replace('/', '--')}"
    snapshot = cache / "snapshots" / ("0" * 40)
    shutil.copytree(files, snapshot, dirs_exist_ok=True)
    (cache / "refs").mkdir(parents=True, exist_ok=True)
    (cache / "refs" / "main").write_text("0" * 40)


def test_timm_hub_id_loads_a_timm_native_checkpoint_from_the_hf_cache(image_folder, tmp_path, capfd):  # noqa: F811
    """timm's own save format (config.json with 'architecture', bare timm keys), as timm/* Hub repos hold."""
    from timm.models import save_for_hf

    torch.manual_seed(0)
    native = tmp_path / "native"
    save_for_hf(timm.create_model(ARCH, pretrained=False), native)
    _put_in_hf_cache(f"timm/{ARCH}.r160_in1k", native)
    result = finetune(
        task="image-classification",
        model=f"timm/{ARCH}.r160_in1k",
        dataset=str(image_folder),
        method="linear-probe",
        output_dir=str(tmp_path / "out"),
        **TIMM,
    )
    err = capfd.readouterr().err
    assert "(HF cache)" in err and "new head (randomly initialised): timm_model.classifier" in err
    assert result.labels.names == ["blue", "green", "red"]


def test_timm_architecture_with_a_weights_file(image_folder, tmp_path, capfd):  # noqa: F811
    """--model <timm name> --weights FILE: a DDP-style 'module.' checkpoint loads strictly; the backbone
    of a linear probe keeps exactly the file's tensors."""
    torch.manual_seed(1)
    source = timm.create_model(ARCH, pretrained=False, num_classes=7)
    weights = tmp_path / "trained.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in source.state_dict().items()}}, weights)
    result = finetune(
        task="image-classification",
        model=ARCH,
        weights=str(weights),
        dataset=str(image_folder),
        method="linear-probe",
        output_dir=str(tmp_path / "out"),
        **TIMM,
    )
    assert f"timm architecture {ARCH} with weights" in capfd.readouterr().err
    trained = result.trainer.model.timm_model.state_dict()
    for key, tensor in source.state_dict().items():
        if not key.startswith("classifier"):
            torch.testing.assert_close(trained[key].cpu(), tensor, atol=0, rtol=0)


def test_timm_name_errors_are_one_line(tmp_path, no_model_build):
    """(--weights of another architecture: tests/reliability/test_bad_inputs.py)"""
    wrong = tmp_path / "wrong.pth"
    torch.save(timm.create_model("test_vit", pretrained=False).state_dict(), wrong)
    with pytest.raises(ModelNotFoundError, match="is a timm architecture: add --weights FILE"):
        finetune(task="image-classification", model=ARCH, dataset="mnist")
    with pytest.raises(ModelNotFoundError, match="needs --model to be a timm architecture name"):
        finetune(task="image-classification", model="bert-base-uncased", weights=str(wrong), dataset="mnist")


def test_weights_for_a_text_task_or_without_a_state_dict_are_one_line(tmp_path, tiny_options, no_model_build):
    not_a_state_dict = tmp_path / "list.pth"
    torch.save([1, 2, 3], not_a_state_dict)
    with pytest.raises(
        ConfigError, match="--weights loads a timm architecture, which only --task image-classification"
    ):
        finetune(weights=str(not_a_state_dict), **tiny_options)
    with pytest.raises(ModelNotFoundError, match="does not hold a state dict"):
        finetune(task="image-classification", model=ARCH, weights=str(not_a_state_dict), dataset="mnist")
