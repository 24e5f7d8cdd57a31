"""``hftl app``: the page in a real headless browser (Debian's chromium through chromium-driver, driven by
selenium), with no network; its bad inputs; the Space ``app.py`` a push can add.

One tiny hftl run (2 steps) and one tiny ViT built from a config serve for the whole file; the servers
and the browser are module-scoped and always shut down."""

from __future__ import annotations

import ast
import importlib
import ipaddress
import json
import socket
import sys
from argparse import ArgumentParser, Namespace
from pathlib import Path
from urllib.parse import urlparse

import pytest
import torch
from PIL import Image
from transformers import (
    AutoTokenizer,
    BertConfig,
    BertForSequenceClassification,
    ViTConfig,
    ViTForImageClassification,
    ViTImageProcessor,
    pipeline,
)

import hftl.app
from hftl import push
from hftl.commands import app as app_command
from hftl.commands import main as hftl_main
from hftl.errors import ConfigError, HftlError, ModelNotFoundError
from hftl.hub import publish
from hftl.run.run_files import record_outputs

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
NO_BROWSER = (
    "chromium and chromium-driver are not installed (Debian: apt-get install chromium chromium-driver)"
)
TEXT = "match goal team player score league"


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


@pytest.fixture(scope="module")
def outside_connections():
    """Every connection or name lookup to anything but this machine, refused and recorded while the
    file's servers run: the app must start and serve with no network."""
    attempts = []
    real_connect, real_getaddrinfo = socket.socket.connect, socket.getaddrinfo

    def connect(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address[0]):
            attempts.append(address)
            raise OSError("the network is off in this test")
        return real_connect(sock, address)

    def getaddrinfo(host, *args, **kwargs):
        if host is not None and not _loopback(host if isinstance(host, str) else host.decode()):
            attempts.append(host)
            raise socket.gaierror("the network is off in this test")
        return real_getaddrinfo(host, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", connect)
        patch.setattr(socket, "getaddrinfo", getaddrinfo)
        yield attempts


@pytest.fixture(scope="module")
def run_dir(tiny_bert_dir, tmp_path_factory) -> Path:
    """An output folder as an hftl run leaves it: the model and tokenizer at the root, a card, the list of
    the files written. Built directly, untrained (test_hub.py pushes real runs): a run costs 10-20 s."""
    folder = tmp_path_factory.mktemp("app-run") / "out"
    names = ["politics", "sport", "tech"]
    torch.manual_seed(0)
    model = BertForSequenceClassification.from_pretrained(
        tiny_bert_dir,
        num_labels=3,
        id2label=dict(enumerate(names)),
        label2id={n: i for i, n in enumerate(names)},
    )
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_bert_dir).save_pretrained(folder)
    (folder / "README.md").write_text("---\nlibrary_name: transformers\n---\n\n# tiny topics\n")
    record_outputs(folder, {})
    return folder


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory) -> Path:
    """A save_pretrained folder: a one-layer ViT over 32 px images, four classes, random weights."""
    folder = tmp_path_factory.mktemp("app-vit")
    torch.manual_seed(0)
    names = ["cat", "dog", "bird", "fish"]
    config = ViTConfig(
        image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=64, num_labels=4, id2label=dict(enumerate(names)),
        label2id={name: index for index, name in enumerate(names)},
    )  # fmt: skip
    ViTForImageClassification(config).save_pretrained(folder)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def serve(outside_connections):
    """``serve(folder) -> url``: the app of ``folder`` on a free localhost port, closed after the file."""
    pytest.importorskip("gradio")
    server = importlib.import_module("hftl.app.server")
    pages = []

    def start(folder) -> str:
        page, url = server.launch(folder, port=_free_port(), block=False)
        pages.append(page)
        return url

    try:
        yield start
    finally:
        for page in pages:
            page.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()):
        pytest.skip(NO_BROWSER)
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,1000",
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",  # the browser is offline too
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):  # fmt: skip
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SE_OFFLINE", "true")  # selenium never looks for drivers online
        patch.setenv("SE_AVOID_STATS", "true")
        driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _submit_and_read(driver, url: str, fill) -> str:
    """Open the page, give it an input (``fill(driver)``), press Submit, return the top label shown."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    WebDriverWait(driver, 30).until(
        lambda d: d.find_element(By.XPATH, "//button[normalize-space()='Submit']")
    )
    fill(driver)
    driver.find_element(By.XPATH, "//button[normalize-space()='Submit']").click()
    value = WebDriverWait(driver, 30).until(
        lambda d: d.find_element(By.CSS_SELECTOR, "[data-testid='label-output-value']").text.strip() or False
    )
    return value


def _requests_elsewhere(driver) -> list[str]:
    """The browser's network requests to anything but this machine (fonts, scripts, analytics)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        request = message.get("params", {}).get("request", {}).get("url") or ""
        parts = urlparse(request)
        if parts.scheme in ("http", "https", "ws", "wss") and not _loopback(parts.hostname or ""):
            urls.append(request)
    return urls


def test_typed_text_gets_the_label_the_pipeline_predicts(browser, serve, run_dir, outside_connections):
    from selenium.webdriver.common.by import By

    url = serve(run_dir)
    expected = pipeline("text-classification", model=str(run_dir))(TEXT)[0]["label"]
    top = _submit_and_read(
        browser, url, lambda d: d.find_element(By.CSS_SELECTOR, "textarea").send_keys(TEXT)
    )
    assert top == expected
    page = browser.find_element(By.TAG_NAME, "body").text
    assert run_dir.name in page and "3 labels: politics, sport, tech" in page  # title, description
    assert _requests_elsewhere(browser) == [] and outside_connections == []


def test_uploaded_image_gets_the_label_the_pipeline_predicts(
    browser, serve, image_dir, tmp_path, outside_connections
):
    from selenium.webdriver.common.by import By

    url = serve(image_dir)
    generator = torch.Generator().manual_seed(1)
    pixels = (torch.rand(40, 48, 3, generator=generator) * 255).to(torch.uint8).numpy()
    picture = tmp_path / "picture.png"
    Image.fromarray(pixels).save(picture)
    expected = pipeline("image-classification", model=str(image_dir))(Image.open(picture))[0]["label"]
    top = _submit_and_read(
        browser, url, lambda d: d.find_element(By.CSS_SELECTOR, "input[type='file']").send_keys(str(picture))
    )
    assert top == expected
    assert _requests_elsewhere(browser) == [] and outside_connections == []


def _one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


def test_bad_models_are_one_line_and_start_nothing(tmp_path):
    server = importlib.import_module("hftl.app.server")
    pytest.importorskip("gradio")
    with pytest.raises(ModelNotFoundError, match="is not a folder") as error:
        server.launch(tmp_path / "missing", block=False)
    _one_line(error)
    (tmp_path / "adapter-run" / "adapter").mkdir(parents=True)
    (tmp_path / "adapter-run" / "adapter" / "adapter_config.json").write_text("{}")
    with pytest.raises(ConfigError, match="only a LoRA adapter.*--lora_merge") as error:
        server.launch(tmp_path / "adapter-run", block=False)
    tagger = tmp_path / "tagger"
    BertConfig(architectures=["BertForTokenClassification"]).save_pretrained(tagger)
    with pytest.raises(ConfigError, match="token-classification model") as error:
        server.launch(tagger, block=False)
    no_tokenizer = tmp_path / "no-tokenizer"
    BertConfig(architectures=["BertForSequenceClassification"], num_labels=2).save_pretrained(no_tokenizer)
    with pytest.raises(ModelNotFoundError, match="pipeline can't load") as error:
        server.launch(no_tokenizer, block=False)
    _one_line(error)
    with pytest.raises(ConfigError, match="--port must be between 1 and 65535"):
        server.launch(tagger, port=70000, block=False)


def test_a_port_in_use_is_one_line(run_dir, outside_connections):
    pytest.importorskip("gradio")
    server = importlib.import_module("hftl.app.server")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(
            ConfigError, match=f"can't listen on 127.0.0.1:{port} .*pass a free --port"
        ) as error:
            server.launch(run_dir, port=port, block=False)
    _one_line(error)


def test_the_command_line(tmp_path, capsys):
    parser = ArgumentParser()
    app_command.add_arguments(parser)
    assert vars(parser.parse_args(["out"])) == {"model": "out", "host": "127.0.0.1", "port": None}
    with pytest.raises(SystemExit):  # there is no share link to ask for
        parser.parse_args(["out", "--share"])
    capsys.readouterr()
    assert hftl_main(["app", str(tmp_path / "missing")]) == 2
    error = capsys.readouterr().err
    assert error.startswith("hftl: error: ") and "is not a folder" in error and error.count("\n") == 1


def test_without_gradio_the_command_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "gradio", None)  # `import gradio` fails as if it were not installed
    for name in ("server", "_page"):  # imported afresh; all restored afterwards
        monkeypatch.delitem(sys.modules, f"hftl.app.{name}", raising=False)
        monkeypatch.delattr(hftl.app, name, raising=False)
    server = importlib.import_module("hftl.app.server")
    with pytest.raises(HftlError, match=r"^hftl app needs gradio: pip install 'hftl\[app\]'$"):
        server.serve(Namespace(model=str(tmp_path), host="127.0.0.1", port=None))


def test_push_dry_run_stages_a_space_app_that_loads_the_repo(run_dir):
    pytest.importorskip("gradio")
    assert publish.main([str(run_dir), "me/tiny-topics", "--dry_run", "--space_app"]) == 0
    folder = run_dir / "push_dry_run"
    assert {"app.py", "requirements.txt", "config.json", "README.md"} <= {p.name for p in folder.iterdir()}
    assert (folder / "requirements.txt").read_text().split() == ["gradio>=5.0", "transformers>=5.0", "torch"]
    source = (folder / "app.py").read_text()
    tree = ast.parse(source)
    assigned = {
        ast.unparse(node.targets[0]): node.value for node in tree.body if isinstance(node, ast.Assign)
    }
    assert ast.literal_eval(assigned["MODEL"]) == "me/tiny-topics"
    assert ast.unparse(assigned["demo"]) == "page_for(MODEL)"
    calls = {ast.unparse(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    assert {"pipeline", "AutoConfig.from_pretrained", "demo.launch"} <= calls
    assert "hftl" not in {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import | ast.ImportFrom) for alias in getattr(node, "names", [])}  # fmt: skip
    # The same code, pointed at the staged files (the repo's content), builds the page and predicts.
    namespace = {"__name__": "space_app"}
    exec(compile(source.replace('"me/tiny-topics"', repr(str(folder))), "app.py", "exec"), namespace)
    scores = namespace["demo"].fns[0].fn(TEXT)
    expected = pipeline("text-classification", model=str(run_dir))(TEXT)[0]
    assert max(scores, key=scores.get) == expected["label"]
    assert scores[expected["label"]] == pytest.approx(expected["score"])


def test_space_app_of_a_model_it_cannot_serve_is_refused_before_writing(tmp_path):
    out = tmp_path / "adapter-only"
    out.mkdir()
    (out / "hftl_outputs.json").write_text(json.dumps(["README.md"]))
    with pytest.raises(ConfigError, match="no merged model") as error:
        push(out, "me/x", dry_run=True, space_app=True)
    _one_line(error)
    assert not (out / "push_dry_run").exists()
    with pytest.raises(ConfigError, match="repo id like user/name"):
        hftl.app.space_app_source("no-slash")
