"""The Python API: docs/api.md's example runs as written, and the API's own checks."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def test_the_api_example_in_the_docs_runs(tmp_path):
    text = (ROOT / "docs" / "api.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S)[1]
    script = tmp_path / "example.py"
    script.write_text(code)
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                            text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "api-example 10 checkpoints/api-example/last.pt"
    assert lines[1] == "(1, 64, 64) []"
    assert re.fullmatch(r"FID \d+\.\d\d, precision \d\.\d\d", lines[2])
    assert (tmp_path / "first.png").is_file()
    assert list((tmp_path / "logs" / "api-example").glob("eval-0000010-*.json"))


def test_import_gan_loads_no_torch():
    code = "import sys, gan; gan.Config; assert 'torch' not in sys.modules, 'torch loaded'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_train_checks_its_keywords_as_the_command_line_does(tmp_path, monkeypatch, mnist_dir):
    import gan
    from gan.errors import GanError

    monkeypatch.chdir(tmp_path)  # the default --workdir: where a run that got through writes
    given = {"data": str(mnist_dir), "max_steps": 1, "batch_size": 4, "device": "cpu"}
    with pytest.raises(GanError, match="did you mean dataset"):
        gan.train(datset="mnist", **given)
    with pytest.raises(GanError, match="batch_size: 0 is not in the range"):
        gan.train(**(given | {"batch_size": 0}))
    with pytest.raises(GanError, match="image_size"):
        gan.train(image_size="big", **given)
    with pytest.raises(GanError, match="image_size: '1x8192' is too large"):
        gan.train(image_size="1x8192", **given)  # the area passes: a side does not
    with pytest.raises(GanError, match="lr_g: must be a finite number, got an integer"):
        gan.train(lr_g=10**400, **given)
    assert not list(tmp_path.iterdir())  # each was refused before anything was written


def test_a_generator_samples_by_label_and_refuses_what_it_cannot_make(tmp_path, mnist_dir):
    import gan
    from gan.errors import GanError

    result = gan.train(dataset="mnist", data=str(mnist_dir), max_steps=1, batch_size=4,
                       device="cpu", workdir=str(tmp_path), run_name="c")  # fmt: skip
    generator = gan.load_generator(result.checkpoint, device="cpu")
    assert generator.classes == [str(d) for d in range(10)] and generator.step == 1
    a, b = generator.sample(3, label="7", seed=5), generator.sample(3, label=7, seed=5)
    assert a.shape == (3, 28, 28, 1) and a.dtype.name == "uint8" and (a == b).all()
    unit = generator.sample(2, seed=5, tensor=True)
    assert unit.shape == (2, 1, 28, 28) and 0 <= float(unit.min()) <= float(unit.max()) <= 1
    for bad in ({"n": 0}, {"n": 10**6}, {"n": 2, "label": "cat"}, {"n": 2, "truncation": 0}):
        with pytest.raises(GanError):
            generator.sample(**bad)


def test_main_py_with_a_checkpoint_writes_what_gan_sample_writes(tmp_path, mnist_dir):
    from tests.conftest import run_cli

    done = run_cli("train", "--data", mnist_dir, "--max-steps", "1", "--batch-size", "4",
                   "--device", "cpu", "--run-name", "m", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    ckpt = "checkpoints/m/last.pt"
    shim = subprocess.run([sys.executable, str(ROOT / "main.py"), ckpt, "--device", "cpu"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert shim.returncode == 0, shim.stderr
    first = (tmp_path / "assets" / "m" / "sample-0000001.png").read_bytes()
    sampled = run_cli("sample", ckpt, "--device", "cpu", cwd=tmp_path)
    assert sampled.returncode == 0, sampled.stderr
    assert shim.stdout == sampled.stdout  # the same path printed
    assert (tmp_path / "assets" / "m" / "sample-0000001.png").read_bytes() == first


def test_the_api_names_are_one_thing_each_and_import_nothing_heavy():
    """gan.train is a plain function (the training code is the package gan.training),
    gan.evaluate is gan evaluate's own function; importing gan loads no torch."""
    import subprocess
    import sys
    import types

    import gan
    import gan.outputs.evaluate
    import gan.training.api

    assert isinstance(gan.train, types.FunctionType) and gan.train is gan.training.api.train
    assert gan.evaluate is gan.outputs.evaluate.evaluate
    assert gan.Config.__module__ == "gan.config.core"
    code = "import sys, gan\nassert 'torch' not in sys.modules\n"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
