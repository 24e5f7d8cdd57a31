"""Publishing at the boundary: the dry-run folder, the card, an intercepted upload, tokens, failures."""

from __future__ import annotations

import json
import re

import pytest
import torch
from huggingface_hub import HfApi, ModelCard

from hftl import finetune, push
from hftl.hub import PushError

from .conftest import TINY_TRAINING, make_rows, write_csv

CANARY = "hf_CANARYcanaryCANARYcanary0123456789"


def all_text_under(folder) -> str:
    return "".join(path.read_bytes().decode("latin-1") for path in folder.rglob("*") if path.is_file())


@pytest.fixture
def fake_hub(monkeypatch):
    """The Hub is 'reachable' and uploads are recorded instead of sent."""
    calls = {}

    def create_repo(self, repo_id, private=False, exist_ok=False, **kwargs):
        calls["create_repo"] = dict(repo_id=repo_id, private=private, token=self.token)

    def upload_folder(self, repo_id, folder_path, **kwargs):
        from pathlib import Path

        root = Path(folder_path)
        calls["upload"] = dict(
            repo_id=repo_id,
            files=sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()),
            card=(root / "README.md").read_text(),
        )
        return "https://huggingface.co/me/tiny/commit/0"

    monkeypatch.setattr("hftl.hub.publish.hub_status", lambda: "reachable")
    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    return calls


def test_dry_run_writes_the_folder_with_a_card_that_parses(tiny_options, tmp_path):
    result = finetune(
        push_to_hub=True,
        hub_model_id="me/tiny-topics",
        push_dry_run=True,
        **{**tiny_options, "eval_strategy": "steps", "eval_steps": 1},
    )
    folder = result.output_dir / "push_dry_run"
    files = {path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file()}
    assert {
        "README.md",
        "config.json",
        "model.safetensors",
        "all_results.json",
        "hftl_config.yaml",
        "confusion_matrix.png",
        "training_curves.png",
        "tokenizer.json",
    } <= files
    assert not any(name.endswith((".bin", ".pt", ".pkl")) for name in files)
    card = ModelCard.load(folder / "README.md")
    assert (
        card.data.pipeline_tag == "text-classification"
        and "hftl" in card.data.tags
        and "full" in card.data.tags
    )
    results = {r.metric_type: r.metric_value for r in card.data.eval_results}
    assert results["accuracy"] == pytest.approx(result.metrics["test_accuracy"])
    assert "/tmp" not in card.content and "topics.csv" in card.content  # no local paths in a public card
    for text in (
        "politics, sport, tech",
        "![Confusion matrix",
        "![Training curves",
        "| accuracy |",
        'pipeline("text-classification", model="me/tiny-topics")',
    ):
        assert text in card.text
    # the published folder loads with stock transformers and predicts like the trained model
    from transformers import AutoModelForSequenceClassification

    reloaded = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    ids = torch.randint(1000, 2000, (2, 6))
    with torch.no_grad():
        torch.testing.assert_close(
            reloaded(input_ids=ids).logits, result.trainer.model.eval().cpu()(input_ids=ids).logits
        )


def test_lora_dry_run_holds_the_merged_model_and_the_adapter(tiny_options):
    result = finetune(
        method="lora", push_to_hub=True, hub_model_id="me/tiny-lora", push_dry_run=True, **tiny_options
    )
    folder = result.output_dir / "push_dry_run"
    assert (folder / "model.safetensors").is_file() and (
        folder / "adapter" / "adapter_model.safetensors"
    ).is_file()
    card = (folder / "README.md").read_text()
    assert 'PeftModel.from_pretrained(base, "me/tiny-lora", subfolder="adapter")' in card


def test_push_uploads_the_folder_and_never_writes_the_token(tiny_options, fake_hub, monkeypatch, capfd):
    monkeypatch.setenv("HF_TOKEN", CANARY)
    result = finetune(
        push_to_hub=True, hub_model_id="me/tiny", hub_private_repo=True, hub_token=CANARY, **tiny_options
    )
    assert fake_hub["create_repo"] == dict(repo_id="me/tiny", private=True, token=CANARY)
    assert fake_hub["upload"]["repo_id"] == "me/tiny" and "model.safetensors" in fake_hub["upload"]["files"]
    assert "training_args.bin" not in fake_hub["upload"]["files"]
    assert ModelCard(fake_hub["upload"]["card"]).data.model_name == "me/tiny"
    captured = capfd.readouterr()
    assert CANARY not in all_text_under(result.output_dir) and CANARY not in captured.out + captured.err


def test_failed_upload_is_one_line_and_keeps_the_output(tiny_options, fake_hub, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", CANARY)

    def broken(self, **kwargs):
        raise ConnectionError("connection reset by peer")

    monkeypatch.setattr(HfApi, "upload_folder", broken)
    output = tiny_options["output_dir"]
    with pytest.raises(
        PushError,
        match=r"Pushing to me/tiny failed \(ConnectionError: connection reset by peer\); .* is intact",
    ) as error:
        finetune(push_to_hub=True, hub_model_id="me/tiny", **tiny_options)
    assert "\n" not in str(error.value) and "python -m hftl.hub.publish" in str(error.value)
    from pathlib import Path

    assert (Path(output) / "model.safetensors").is_file() and (Path(output) / "README.md").is_file()


def test_push_after_the_fact_and_its_command_line(run_forked, tiny_options, fake_hub, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_TOKEN", CANARY)
    result = finetune(**tiny_options)  # every run writes its card and images
    assert (result.output_dir / "README.md").is_file() and (
        result.output_dir / "confusion_matrix.png"
    ).is_file()
    push(result.output_dir, "me/later")
    assert fake_hub["upload"]["repo_id"] == "me/later"
    exit_code, output = run_forked(result.output_dir, "me/later", "--dry_run", module="hftl.hub.publish")
    assert exit_code == 0, output[-3000:]
    assert (result.output_dir / "push_dry_run" / "README.md").is_file()


def test_published_adapter_reproduces_the_trained_model(tiny_options, tiny_bert_dir):
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification

    result = finetune(
        method="lora",
        push_to_hub=True,
        hub_model_id="me/tiny-lora",
        push_dry_run=True,
        **{**tiny_options, "learning_rate": 1e-2},
    )
    folder = result.output_dir / "push_dry_run"
    names = json.loads((folder / "adapter" / "label_names.json").read_text())
    base = AutoModelForSequenceClassification.from_pretrained(
        tiny_bert_dir,
        num_labels=len(names),
        id2label=dict(enumerate(names)),
        label2id={n: i for i, n in enumerate(names)},
    )
    adapted = PeftModel.from_pretrained(base, folder / "adapter").eval()
    merged = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    ids = torch.randint(1000, 2000, (2, 6))
    with torch.no_grad():
        expected = result.trainer.model.eval().cpu()(input_ids=ids).logits
        torch.testing.assert_close(adapted(input_ids=ids).logits, expected, atol=1e-5, rtol=0)
        torch.testing.assert_close(merged(input_ids=ids).logits, expected, atol=1e-5, rtol=0)


def test_distilled_student_card_compares_teacher_and_student(tiny_options, tiny_bert_dir, tmp_path):
    teacher = finetune(**{**tiny_options, "output_dir": str(tmp_path / "teacher")}).output_dir
    result = finetune(
        method="distill",
        teacher=str(teacher),
        push_to_hub=True,
        hub_model_id="me/student",
        push_dry_run=True,
        **{**tiny_options, "model": tiny_bert_dir, "output_dir": str(tmp_path / "s")},
    )
    card = ModelCard.load(result.output_dir / "push_dry_run" / "README.md")
    assert "### Teacher and student (same test split)" in card.text and "inference speed" in card.text
    assert "distill" in card.data.tags
    assert "/tmp" not in card.content and "Distilled from the teacher `teacher`" in card.text


def test_push_stages_exactly_the_files_the_run_wrote(tiny_options, tmp_path, capfd):
    """Files the user adds later, and a listed file swapped for a link to a file elsewhere, never go."""
    import yaml

    result = finetune(**{**tiny_options, "method": "lora", "save_strategy": "steps", "save_steps": 1})
    out = result.output_dir
    listed = json.loads((out / "hftl_outputs.json").read_text())["files"]
    assert {
        "README.md", "config.json", "model.safetensors", "tokenizer.json", "all_results.json",
        "test_report.json", "hftl_config.yaml", "confusion_matrix.png", "training_curves.png",
        "adapter/adapter_config.json", "adapter/adapter_model.safetensors", "adapter/label_names.json",
    } <= set(listed)  # fmt: skip
    assert not any(name.startswith("checkpoint-") or name == "hftl_run.json" for name in listed)
    assert set(listed) == {  # everything the run left at the end, and nothing else
        p.relative_to(out).as_posix()
        for p in out.rglob("*")
        if p.is_file() and p.relative_to(out).parts[0] not in ("hftl_run.json", "hftl_outputs.json")
        and not p.relative_to(out).parts[0].startswith("checkpoint-")
    }  # fmt: skip
    # the user's files, added after the run
    (out / "notes.md").write_text("my notes")
    (out / "plots").mkdir()
    (out / "plots" / "mine.png").write_bytes(b"\x89PNG mine")
    secret = tmp_path / "elsewhere" / "secret.json"
    secret.parent.mkdir()
    secret.write_text('{"secret": "SECRET-CONTENT"}')
    (out / "linked.json").symlink_to(secret)
    (out / "test_report.json").unlink()
    (out / "test_report.json").symlink_to(secret)  # a listed name, now a link: skipped with a line
    capfd.readouterr()
    folder = push(out, "me/tiny-lora", dry_run=True)
    staged = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    publishable = {name for name in listed if not name.endswith((".bin", ".pt", ".pkl"))}
    assert staged == publishable - {"test_report.json"}
    assert "SECRET-CONTENT" not in all_text_under(folder)
    assert "not pushing test_report.json: it is a symbolic link" in capfd.readouterr().err
    # no absolute local path in the published config and adapter config; the local ones keep theirs
    public = yaml.safe_load((folder / "hftl_config.yaml").read_text())
    local = yaml.safe_load((out / "hftl_config.yaml").read_text())
    assert local["model"] == tiny_options["model"] and local["output_dir"] == str(out)  # reruns with --config
    assert public["model"] == "tiny-bert0" and public["dataset"] == "topics.csv" and public["output_dir"] == "out"
    assert {key: value for key, value in public.items() if key not in ("model", "dataset", "output_dir")} == {
        key: value for key, value in local.items() if key not in ("model", "dataset", "output_dir")
    }
    assert str(tmp_path) not in (folder / "hftl_config.yaml").read_text()
    adapter = json.loads((folder / "adapter" / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == "tiny-bert0"
    assert json.loads((out / "adapter" / "adapter_config.json").read_text())["base_model_name_or_path"] == (
        tiny_options["model"]
    )
    assert not any(str(tmp_path) in path.read_text() for path in folder.rglob("*.json"))
    assert not any(str(tmp_path) in path.read_text() for path in folder.rglob("*.yaml"))


def test_push_of_a_folder_without_the_list_is_refused(tmp_path, fake_hub, monkeypatch):
    from hftl import ConfigError

    monkeypatch.setenv("HF_TOKEN", CANARY)
    out = tmp_path / "by-hand"
    out.mkdir()
    (out / "README.md").write_text("# a model\n")
    (out / "config.json").write_text("{}")
    with pytest.raises(ConfigError, match=r"has no hftl_outputs.json \(the list of files an hftl run wrote\)") as error:
        push(out, "me/by-hand", dry_run=True)
    assert "\n" not in str(error.value) and not (out / "push_dry_run").exists()
    with pytest.raises(ConfigError, match="has no hftl_outputs.json"):
        push(out, "me/by-hand")
    assert "upload" not in fake_hub and sorted(p.name for p in out.iterdir()) == ["README.md", "config.json"]


def test_dry_run_never_writes_through_a_linked_dry_run_folder(tiny_options, tmp_path):
    from hftl import ConfigError

    out = finetune(**tiny_options).output_dir
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("mine")
    (out / "push_dry_run").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(ConfigError, match="push_dry_run is a symbolic link or a file") as error:
        push(out, "me/tiny", dry_run=True)
    assert "\n" not in str(error.value)
    assert [p.name for p in elsewhere.iterdir()] == ["keep.txt"] and (elsewhere / "keep.txt").read_text() == "mine"


# an absolute path in text: two or more segments after a start, a space, a quote or a separator
# (a URL's "//host" never matches: its first segment is empty)
ABSOLUTE_PATH = re.compile(r"""(?:^|[\s"'=:\[,(])(?:~)?/[\w.-]+/[\w.-]+""", re.MULTILINE)
TEXT_SUFFIXES = (".json", ".yaml", ".yml", ".txt", ".md", ".jinja")


def _staged_text(folder) -> dict[str, str]:
    return {
        path.relative_to(folder).as_posix(): path.read_text(encoding="utf-8")
        for path in folder.rglob("*")
        if path.is_file() and path.suffix in TEXT_SUFFIXES
    }


@pytest.mark.parametrize("method", ["lora", "full"])
def test_pushed_text_files_carry_no_local_path(method, tiny_bert_dir, tmp_path, monkeypatch):
    """Every path option absolute under tmp (the model, the data and the resumed checkpoint gone before
    the push, as a deleted copy or checkpoint rotation leaves them; more in the config, as a search or a
    timm run writes them): no staged text file names a place on this machine, and other values (the
    label delimiter "/") are published unchanged."""
    import shutil

    import yaml

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    model = tmp_path / "models" / "bert"
    shutil.copytree(tiny_bert_dir, model)
    rows = make_rows(60)
    for index, row in enumerate(rows[::4]):  # some rows carry two labels: multi-label split on "/"
        row["label"] += "/" + ["politics", "sport", "tech"][index % 3]
    dataset = write_csv(tmp_path / "data" / "topics.csv", rows)
    out = tmp_path / "runs" / "out"
    options = dict(
        TINY_TRAINING, model=str(model), dataset=str(dataset), output_dir=str(out), method=method,
        label_delimiter="/", save_strategy="steps", save_steps=1,
    )  # fmt: skip
    finetune(**options)
    finetune(
        **{**options, "max_steps": 4, "save_total_limit": 1, "resume_from_checkpoint": str(out / "checkpoint-1")}
    )
    assert not (out / "checkpoint-1").exists()  # rotated away: the config names a path that is gone
    local_config = out / "hftl_config.yaml"
    gone = {  # options a run of other settings writes: gone, home-relative, relative, existing
        "weights": str(tmp_path / "gone" / "resnet.safetensors"),
        "hp_space": "~/spaces/space.yaml",
        "teacher": "../teachers/teacher-run",
        "deepspeed": str(tmp_path / "ds_config.json"),
    }
    (tmp_path / "ds_config.json").write_text("{}")
    local_config.write_text(local_config.read_text() + yaml.safe_dump(gone))
    local = yaml.safe_load(local_config.read_text())
    shutil.rmtree(model)
    shutil.rmtree(dataset.parent)
    folder = push(out, "me/x", dry_run=True)

    staged = _staged_text(folder)
    assert {"README.md", "hftl_config.yaml", "config.json", "tokenizer_config.json", "all_results.json"} <= set(
        staged
    )
    if method == "lora":
        assert {"adapter/README.md", "adapter/adapter_config.json"} <= set(staged)
    for name, text in staged.items():
        for local_text in (str(tmp_path), str(tmp_path / "home"), "/tmp/", "~/"):
            assert local_text not in text, (name, local_text)
        assert not ABSOLUTE_PATH.search(text), (name, ABSOLUTE_PATH.search(text).group())
    public = yaml.safe_load(staged["hftl_config.yaml"])
    assert public["model"] == "bert" and public["dataset"] == "topics.csv" and public["output_dir"] == "out"
    assert public["resume_from_checkpoint"] == "checkpoint-1" and public["label_delimiter"] == "/"
    assert public["weights"] == "resnet.safetensors" and public["hp_space"] == "space.yaml"
    assert public["teacher"] == "teacher-run" and public["deepspeed"] == "ds_config.json"
    paths = {"model", "dataset", "output_dir", "resume_from_checkpoint", *gone}
    assert {key: value for key, value in public.items() if key not in paths} == {
        key: value for key, value in local.items() if key not in paths
    }
    if method == "lora":
        card = ModelCard.load(folder / "adapter" / "README.md").data
        assert card.base_model == "bert" and "base_model:adapter:bert" in card.tags
        assert json.loads(staged["adapter/adapter_config.json"])["base_model_name_or_path"] == "bert"
    # the local files keep their paths (rerun with --config, the adapter finds its base here)
    assert yaml.safe_load(local_config.read_text())["resume_from_checkpoint"] == str(out / "checkpoint-1")


def test_lr_finder_files_are_listed_and_pushed(tiny_options, tmp_path):
    """--find_lr writes lr_finder.png and .json before the model's save: they are the run's own output,
    listed in hftl_outputs.json and published unchanged (a rerun with --overwrite_output_dir removes them)."""
    options = {**tiny_options, "find_lr": True, "find_lr_steps": 10, "per_device_train_batch_size": 16}
    out = finetune(**options).output_dir
    listed = json.loads((out / "hftl_outputs.json").read_text())["files"]
    assert {"lr_finder.png", "lr_finder.json"} <= set(listed) and "hftl_run.json" not in listed
    folder = push(out, "me/tiny", dry_run=True)
    for name in ("lr_finder.png", "lr_finder.json"):
        assert (folder / name).read_bytes() == (out / name).read_bytes()
    finetune(**{**tiny_options, "overwrite_output_dir": True})
    assert not (out / "lr_finder.png").exists() and not (out / "lr_finder.json").exists()
