"""The README stays true: its examples run, and every command is documented."""

import json
import re
import shlex
from pathlib import Path

import pytest

from sortcore.cli import main

from .shared import SHARED, cli_runner

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def readme_examples():
    blocks = re.findall(r"```console\n(.*?)```", README, re.S)
    return [line[2:] for block in blocks for line in block.splitlines() if line.startswith("$ ")]


def test_readme_first_section_has_exactly_the_two_commands():
    first = README.split("\n## ", 1)[0]
    commands = re.findall(r"```sh\n(.*?)```", first, re.S)[0].strip().splitlines()
    assert [c.split("#")[0].strip() for c in commands] == ["make demo", "make test"]
    assert "make test" in (ROOT / ".ci" / "run").read_text()


@pytest.mark.parametrize("example", readme_examples())
def test_readme_examples_run(example, tmp_path, monkeypatch):
    if not (SHARED / "frame-logs").exists():
        pytest.skip("../shared/frame-logs is not beside the repository")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    runner = cli_runner()
    # Examples build on each other (pairs after replay, replay of sim.log): run them in order.
    for line in readme_examples():
        argv = shlex.split(line.replace("../shared/", str(SHARED) + "/"))
        assert argv[0] == "sortcore"
        result = runner.invoke(main, argv[1:])
        assert result.exit_code == 0, (line, result.output, result.stderr)
        if line == example:
            break


def test_every_command_has_help_and_is_in_the_readme():
    for name, command in main.commands.items():
        assert command.help and command.help.strip(), name
        assert "sortcore %s" % name in README or "`%s`" % name in README, name
        assert cli_runner().invoke(main, [name, "--help"]).exit_code == 0


def test_settings_reference_is_generated_from_the_table():
    from sortcore.core import settings

    text = (ROOT / "docs" / "settings.md").read_text()
    assert text == settings.markdown(), "run: sortcore settings --markdown > docs/settings.md"


def test_every_documented_variable_takes_effect(tmp_path):
    """Each setting's environment variable reaches the command (SORTCORE_DB as the example)."""
    from click.testing import CliRunner

    from sortcore.cli import main

    db = tmp_path / "from-env.db"
    log = str(SHARED / "frame-logs" / "window-edges.log")
    result = CliRunner().invoke(main, ["replay", log, "--json"],
                                env={"SORTCORE_DB": str(db), "SORTCORE_MIN_FRAMES": "400"})
    assert result.exit_code == 0, result.output
    assert db.exists() and json.loads(result.output)["socks"] == []  # 400 frames make no sock


def _sample(setting, default, path):
    """A valid value for ``setting`` that is not its default, as environment text."""
    if setting.kind == "bool":
        return "0" if default else "1"
    if setting.kind == "choice":
        return next(c for c in reversed(setting.choices) if c != default)
    samples = {"int": "7", "float": "2.5", "list": "Blank,Wall", "path": str(path)}
    if setting.name == "broker":
        return "mqtt://example.invalid:1999"
    return samples.get(setting.kind, "from-env")


def _with_settings():
    from sortcore.core import settings

    return sorted(c for c in main.commands if settings.for_command(c))


@pytest.mark.parametrize("command", _with_settings())
def test_every_setting_is_read_from_its_documented_variable(command, tmp_path, monkeypatch):
    """docs/settings.md names SORTCORE_<SETTING> for each command: each one takes effect."""
    from sortcore.core import settings

    chosen = settings.for_command(command)
    path = tmp_path / "a-file"
    path.write_text("x\n")
    expected = {}
    for setting in chosen:
        text = _sample(setting, settings.default(setting, command), path)
        monkeypatch.setenv(setting.envvar(command), text)
        expected[setting.name] = setting.parse(text)
    args = {"replay": [str(path)], "count": [str(path)], "classify": [str(path)],
            }.get(command, [])
    ctx = main.commands[command].make_context(command, args)
    got = {name: tuple(v) if isinstance(v, list) else v for name, v in ctx.params.items() if name in expected}
    assert got == expected


FAST_PROBE = """
import json, sys, pytest
rc = pytest.main(["--fast", "--collect-only", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", "-p", "no:anyio"])
print("PROBE " + json.dumps({"rc": int(rc), "modules": sorted(m for m in sys.modules if "." not in m)}))
"""


def test_the_fast_loop_imports_no_classifier_library_and_keeps_the_core_tests():
    """README: `make fast` is a real subset, collected without MXNet, OpenCV or ONNX Runtime."""
    import subprocess
    import sys

    assert "--fast -q -p no:xdist -p no:anyio" in (ROOT / "Makefile").read_text()
    done = subprocess.run([sys.executable, "-c", FAST_PROBE], cwd=str(ROOT), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=300)
    lines = done.stdout.splitlines()
    probe = json.loads(lines[-1][len("PROBE "):])
    assert probe["rc"] == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert set(probe["modules"]) & {"mxnet", "cv2", "onnxruntime", "onnx", "torch", "playwright"} == set()
    per_module = {}
    for line in lines:
        if line.startswith("tests/") and "::" in line:
            module = line.split("::")[0].split("/")[-1]
            per_module[module] = per_module.get(module, 0) + 1
    for module, at_least in (("test_engine.py", 20), ("test_event_time.py", 15), ("test_frames.py", 10),
                             ("test_store.py", 10), ("test_replay.py", 10), ("test_docs.py", 10),
                             ("test_layout.py", 5), ("test_architecture.py", 5)):
        assert per_module.get(module, 0) >= at_least, (module, per_module.get(module))
    assert not set(per_module) & {"test_model.py", "test_web_browser.py", "test_package.py", "test_videoout.py", "test_demo.py"}
