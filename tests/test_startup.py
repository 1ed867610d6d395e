"""Start-up stays light: the CLI and replay never import numpy, rich, tqdm or sqlite-utils.

(Facts about sys.modules in a fresh interpreter, not a timing test.)
"""

import json
import os
import subprocess
import sys

import pytest

from .shared import FRAME_LOGS, ROOT

HEAVY = ("numpy", "sqlite_utils", "rich", "tqdm", "pandas")


def imported_after(code):
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
        env=dict(os.environ, PYTHONPATH=str(ROOT)), stdout=subprocess.PIPE, check=True,
    ).stdout.decode()
    modules = set(json.loads(out.splitlines()[-1]))
    return [name for name in HEAVY if name in modules]


@pytest.mark.parametrize("module", ["sortcore.cli", "sortcore.offline.replay", "sortcore.store.database", "sortcore.store.pipeline",
                                    "sortcore.runtime.service"])
def test_importing_is_light(module):
    assert imported_after("import " + module) == []


def test_a_replay_into_a_new_store_is_light(tmp_path):
    code = ("from sortcore.cli import main\n"
            "try:\n    main(['replay', '--json', '--db', %r, %r])\nexcept SystemExit as e:\n    assert not e.code\n"
            % (str(tmp_path / "s.db"), str(FRAME_LOGS / "session-2.log")))
    assert imported_after(code) == []
