"""Every SORTCORE_* variable the deploy files and install docs name is one the settings table
reads (the config example once named SORTCORE_SERVE_<OPTION> variables that do not exist)."""

import re

import pytest

from sortcore.core.settings import SETTINGS
from tests.shared import ROOT

pytestmark = pytest.mark.compat

FILES = ["deploy/sortcore.conf.example", "docs/linux.md", "docs/onnx.md", "docs/greengrass-v2.md"] + \
    ["deploy/linux/" + p.name for p in (ROOT / "deploy" / "linux").iterdir()] + \
    ["deploy/greengrass-v2/" + p.name for p in (ROOT / "deploy" / "greengrass-v2").iterdir()]


def test_named_environment_variables_exist():
    real = {s.envvar(command) for s in SETTINGS for command in s.commands}
    named = {(name, var) for name in FILES
             for var in re.findall(r"SORTCORE_[A-Z0-9_]*[A-Z0-9]", (ROOT / name).read_text())}
    assert {(name, var) for name, var in named if var not in real} == set()
    assert len(named) >= 10  # the files do name them
