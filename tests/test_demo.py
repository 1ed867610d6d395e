"""``sortcore demo`` end to end: real mosquitto, service thread, simulated camera."""

import json

from click.testing import CliRunner

from sortcore.cli import main
from tests.shared import FRAME_LOGS


def test_demo_json_matches_the_simulated_truth(tmp_path):
    result = CliRunner().invoke(main, ["demo", "--json", "--speed", "40", "--seed", "7", "--socks", "12",
                                       "--db", str(tmp_path / "demo.db")])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["correct"] is True
    assert out["messages"] == sum(r["number_socks_seen"] for r in out["socks"])
    assert out["db"] == str(tmp_path / "demo.db")


def test_demo_plays_a_recorded_log(tmp_path):
    log = FRAME_LOGS / "blog-screenshot.log"
    result = CliRunner().invoke(main, ["demo", "--json", "--speed", "20", "--log", str(log)])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    truth = json.loads((FRAME_LOGS / "blog-screenshot.truth.json").read_text())
    assert {r["image"]: r["number_socks_seen"] for r in out["socks"]} == truth["sighting"]


def test_demo_live_table_ends_with_the_store_path(tmp_path):
    result = CliRunner().invoke(main, ["demo", "--speed", "40", "--seed", "1", "--socks", "6",
                                       "--db", str(tmp_path / "d.db")])
    assert result.exit_code == 0, result.output
    assert "Final pairs" in result.output and "d.db" in result.output
