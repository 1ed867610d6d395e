"""sortcore watch: rate-limited classification into sockfound payloads."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from sortcore.core.errors import ConfigError
from sortcore.core.frames import frame_from_obj
from sortcore.classifier.model import Prediction
from sortcore.runtime.watch import WatchOptions, watch
from tests.clock import FakeClock

MODEL = Path(__file__).resolve().parents[1] / "model"


class Constant(object):
    def classify(self, frame):
        return Prediction("Github", 97.5)


def test_payloads_are_valid_frames_and_rate_limited():
    clock, out = FakeClock(1000.0), []
    frames = [np.zeros((4, 4, 3), np.uint8)] * 5
    sent = watch(frames, Constant(), out.append, WatchOptions(fps=4, camera="cam1"),
                 clock=clock, sleep=clock.sleep)
    assert sent == 5
    # Sleeps come before taking a frame (fresh frames from a live camera), so
    # the fifth one precedes finding the list exhausted.
    assert clock.sleeps == [0.25] * 5
    decoded = [frame_from_obj(json.loads(p)) for p in out]
    assert [f.frame for f in decoded] == [0, 1, 2, 3, 4]
    assert [f.ts for f in decoded] == [1000.0, 1000.25, 1000.5, 1000.75, 1001.0]
    assert {(f.label, f.probability, f.camera) for f in decoded} == {("Github", 97.5, "cam1")}


def test_count_stops_early_and_slow_frames_do_not_sleep():
    clock, out = FakeClock(1000.0), []

    class Slow(Constant):
        def classify(self, frame):
            clock.t += 1.0
            return Prediction("Blank", 50.0)

    def endless():
        while True:
            yield np.zeros((2, 2, 3), np.uint8)

    sent = watch(endless(), Slow(), out.append,
                 WatchOptions(fps=2, count=3), clock=clock, sleep=clock.sleep)
    assert sent == 3 and len(out) == 3 and clock.sleeps == []


def test_bad_options():
    with pytest.raises(ConfigError):
        WatchOptions(fps=-1)
    with pytest.raises(ConfigError):
        WatchOptions(count=0)
    with pytest.raises(ConfigError):
        WatchOptions(camera="")


def test_watch_cli_prints_json_lines(tmp_path):
    pytest.importorskip("onnxruntime")
    cv2 = pytest.importorskip("cv2")
    import click
    from click.testing import CliRunner
    from sortcore.cli.model import commands
    group = click.Group("sortcore")
    for command in commands:
        group.add_command(command)
    for i in range(3):
        cv2.imwrite(str(tmp_path / ("f%d.png" % i)), np.full((48, 64, 3), 190, np.uint8))
    result = CliRunner().invoke(group, ["watch", "--source", "folder:%s?loop" % tmp_path,
                                        "--fps", "0", "--count", "5", "--camera", "desk",
                                        "--model", str(MODEL)])
    assert result.exit_code == 0, result.output
    lines = [l for l in result.stdout.splitlines() if l.startswith("{")]
    frames = [frame_from_obj(json.loads(l)) for l in lines]
    assert [f.frame for f in frames] == [0, 1, 2, 3, 4]
    assert all(f.camera == "desk" and f.label == "Blank" for f in frames)


def test_watch_cli_bad_source_is_a_click_error():
    pytest.importorskip("onnxruntime")
    import click
    from click.testing import CliRunner
    from sortcore.cli.model import watch as watch_command
    group = click.Group("sortcore")
    group.add_command(watch_command)
    result = CliRunner().invoke(group, ["watch", "--source", "ftp:x", "--model", str(MODEL)])
    assert result.exit_code == 1 and "unknown frame source" in result.output


def test_watch_publishes_to_a_broker_with_serve_s_connection_options(mosquitto, tmp_path):
    import subprocess
    import sys

    from tests.mqtt_util import Collector
    from tests.shared import PHOTOS, ROOT

    if not PHOTOS.exists():
        pytest.skip("../shared/sock-photos is not beside the repository")
    with Collector(mosquitto, ["sockfound"]) as seen:
        done = subprocess.run(
            [sys.executable, "-m", "sortcore", "watch", "--source", "folder:%s" % PHOTOS, "--fps", "0",
             "--count", "3", "--camera", "desk"],
            env=dict(os.environ, PYTHONPATH=str(ROOT), SORTCORE_BROKER=mosquitto.url,
                     SORTCORE_PROTOCOL="3.1.1"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
        assert done.returncode == 0, done.stderr
        payloads = seen.wait_json(3, "sockfound", timeout=10)
    assert [p["camera"] for p in payloads] == ["desk"] * 3 and done.stdout == ""
