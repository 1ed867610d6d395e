"""``sortcore replay``: truth files, bad lines, stdin, and resuming after SIGKILL."""

import glob
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from sortcore.cli import main
from sortcore.core.engine import EngineConfig
from sortcore.offline.simulate import count, simulate

from .shared import BAD_LINES, FRAME_LOGS, cli_runner, truth_cases

pytestmark = pytest.mark.compat


def replay_json(db, *args, stdin=None):
    result = cli_runner().invoke(main, ["replay", "--db", str(db), "--json"] + [str(a) for a in args], input=stdin)
    return result, (json.loads(result.stdout.strip().splitlines()[-1]) if result.exit_code == 0 else None)


def counts(out):
    return {row["image"]: row["number_socks_seen"] for row in out["socks"]}


@pytest.mark.parametrize("log, truth, fps", truth_cases(), ids=lambda v: getattr(v, "name", str(v)))
@pytest.mark.parametrize("mode", ["sighting", "tumbling"])
def test_replay_gives_the_truth(tmp_path, log, truth, fps, mode):
    expected = json.loads(truth.read_text())
    args = ["--mode", mode, log] + (["--fps", fps] if fps else [])
    result, out = replay_json(tmp_path / "s.db", *args)
    assert result.exit_code == 0, result.output
    assert counts(out) == expected[mode]
    assert (out["mode"], out["frames"], out["dead_letters"]) == (mode, expected["frames"], 0)
    assert out["odd"] == sorted(d for d, n in expected[mode].items() if n % 2)


@pytest.mark.parametrize("mode", ["sighting", "tumbling"])
def test_bad_lines_become_dead_letters_and_the_counts_stay(tmp_path, mode):
    good = (FRAME_LOGS / "session-2.log").read_bytes().splitlines()
    mixed = list(good)
    rng = random.Random(7)
    for bad in BAD_LINES:
        mixed.insert(rng.randrange(len(mixed)), bad)
    log = tmp_path / "mixed.log"
    log.write_bytes(b"\n".join(mixed) + b"\n")
    db = tmp_path / "s.db"
    result, out = replay_json(db, "--mode", mode, log)
    assert result.exit_code == 0, result.output
    assert counts(out) == json.loads((FRAME_LOGS / "session-2.truth.json").read_text())[mode]
    assert out["dead_letters"] == len(BAD_LINES) and out["frames"] == len(good)
    rows = sqlite3.connect(str(db)).execute("select line, reason from dead_letters order by line").fetchall()
    assert [line for line, _ in rows] == sorted(i + 1 for i, line in enumerate(mixed) if line in BAD_LINES)
    assert all(reason for _, reason in rows)
    strict = cli_runner().invoke(main, ["replay", "--db", str(db), "--strict", "--json", str(log)])
    assert strict.exit_code == 1 and "dead letter" in strict.stderr


def test_replay_reads_stdin(tmp_path):
    data = (FRAME_LOGS / "window-edges.log").read_text()
    result, out = replay_json(tmp_path / "s.db", "-", stdin=data)
    assert counts(out) == {"Google": 2, "Mongo": 1}


def test_plain_log_needs_fps_and_says_so(tmp_path):
    result = cli_runner().invoke(main, ["replay", "--db", str(tmp_path / "s.db"), str(FRAME_LOGS / "blog-screenshot.plain.log")])
    assert result.exit_code == 1 and "--fps" in result.stderr
    sessions = cli_runner().invoke(main, ["sessions", "--db", str(tmp_path / "s.db"), "--json"])
    assert json.loads(sessions.stdout) == []


def test_pairs_sessions_and_reset(tmp_path):
    db = str(tmp_path / "s.db")
    replay_json(db, FRAME_LOGS / "window-edges.log")
    pairs = json.loads(cli_runner().invoke(main, ["pairs", "--db", db, "--json"]).stdout)
    assert pairs["odd"] == ["Mongo"] and counts(pairs) == {"Google": 2, "Mongo": 1}
    assert "started session 2" in cli_runner().invoke(main, ["reset", "--db", db]).output
    assert json.loads(cli_runner().invoke(main, ["pairs", "--db", db, "--json"]).stdout)["socks"] == []
    listed = json.loads(cli_runner().invoke(main, ["sessions", "--db", db, "--json"]).stdout)
    assert [(s["id"], s["socks"]) for s in listed] == [(1, 3), (2, 0)]


def test_simulate_writes_a_log_that_replays_to_its_truth(tmp_path):
    log = tmp_path / "sim.log"
    result = cli_runner().invoke(main, ["simulate", "-o", str(log), "--seed", "3", "--socks", "30"])
    assert result.exit_code == 0, result.output
    truth = json.loads((tmp_path / "sim.truth.json").read_text())
    assert len(truth["shown"]) == 30
    assert counts(replay_json(tmp_path / "s.db", log)[1]) == truth["sighting"]
    assert counts(replay_json(tmp_path / "s.db", "--mode", "tumbling", log)[1]) == truth["tumbling"]


def committed_line(db):
    """The line the last commit of the latest session reached (0 before any)."""
    try:
        conn = sqlite3.connect(db, timeout=5)
        row = conn.execute("select replay_position from sessions order by id desc limit 1").fetchone()
        conn.close()
    except sqlite3.Error:
        return 0
    return json.loads(row[0])["line"] if row and row[0] else 0


@pytest.mark.slow
def test_a_replay_killed_at_random_points_resumes_to_the_same_answer(tmp_path):
    lines, truth = simulate(socks=6000, seed=11, start=1790000000.0)
    one_pass = count(lines, EngineConfig())  # not truth["sighting"]: at this size ghosts make a phantom or two
    log = tmp_path / "big.log"
    log.write_text("\n".join(lines) + "\n")
    db = str(tmp_path / "s.db")
    cmd = [sys.executable, "-m", "sortcore.cli", "replay", "--db", db, "--json", "--commit-every", "300", str(log)]
    rng = random.Random(5)
    kills, target = 0, rng.randrange(300, 30000)
    for _attempt in range(30):  # however fast the machine: a run that ends first starts over, aiming earlier
        if kills == 3:
            break
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        # No event crosses the process boundary: watch the committed position, then kill -9.
        while proc.poll() is None and committed_line(db) < target:
            time.sleep(0.005)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
            target = committed_line(db) + rng.randrange(300, 30000)
        else:
            for leftover in glob.glob(db + "*"):
                os.remove(leftover)
            kills, target = 0, max(300, target // 4)
        proc.communicate()
    assert kills == 3
    done = subprocess.run(cmd, stdout=subprocess.PIPE, check=True)
    out = json.loads(done.stdout.decode().splitlines()[-1])
    assert kills >= 3
    assert out["session"] == 1  # every restart resumed the one session
    assert counts(out) == one_pass
    assert out["frames"] == truth["frames"]
    conn = sqlite3.connect(db)
    ids = [row[0] for row in conn.execute("select id from sightings order by id")]
    assert ids == list(range(1, sum(one_pass.values()) + 1))


def test_unrecognised_socks_in_replay_and_pairs_json(tmp_path):
    lines = []
    t = 1790011615.0
    for image in ("Unknown", "Google", "Unknown", "Blank", "Google"):
        for _ in range(5):
            lines.append('%.2f {"image": "%s", "probability": 80}' % (t, image))
            t += 0.3
        t += 3.0
    log = tmp_path / "unknown.log"
    log.write_text("\n".join(lines) + "\n")
    db = tmp_path / "u.db"
    result, out = replay_json(db, log)
    assert result.exit_code == 0, result.output
    assert (out["socks"], out["odd"], out["unknown"]) == (
        [{"image": "Google", "number_socks_seen": 2, "pair_seen": "Pair", "pairs": 1}], [], 2)
    shown = cli_runner().invoke(main, ["pairs", "--db", str(db), "--json"])
    assert shown.exit_code == 0, shown.output
    pairs = json.loads(shown.stdout)
    assert (pairs["socks"], pairs["odd"], pairs["unknown"]) == (out["socks"], [], 2)


def test_replay_restores_the_garbage_collector_thresholds_even_when_it_fails(tmp_path):
    import gc

    from sortcore.offline.replay import rare_collections

    before = gc.get_threshold()
    with pytest.raises(RuntimeError):
        with rare_collections(factor=50):
            assert gc.get_threshold() == (before[0] * 50,) + before[1:]
            raise RuntimeError("a replay that fails half-way")
    assert gc.get_threshold() == before
    result, out = replay_json(tmp_path / "s.db", FRAME_LOGS / "session-1.log")
    assert result.exit_code == 0 and gc.get_threshold() == before
