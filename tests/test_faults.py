"""Faults and hostile input: each is reproduced, then gives one clear message and loses no good data."""

import gzip
import json
import os
import sqlite3
import stat
import subprocess
import sys

import pytest

from sortcore.cli import main
from sortcore.core.engine import EngineConfig
from sortcore.core.errors import BadFrame, StoreBusy, StoreCorrupt, StoreFull, StoreLocked
from sortcore.core.frames import DeadLetter, decode_payload, label_set
from sortcore.store.pipeline import Pipeline
from sortcore.store.database import Store

from .disk import fill
from .shared import FRAME_LOGS, ROOT, cli_runner
from .test_store import feed_socks
from tests.shared import sightings

pytestmark = pytest.mark.compat

LOG = FRAME_LOGS / "session-2.log"


def env():
    return dict(os.environ, PYTHONPATH=str(ROOT))


def sortcore(*args, timeout=60):
    """``python -m sortcore ARGS`` in a subprocess: (exit code, stdout, stderr)."""
    proc = subprocess.run([sys.executable, "-m", "sortcore"] + [str(a) for a in args], env=env(),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    return proc.returncode, proc.stdout.decode(), proc.stderr.decode()


def assert_one_clear_line(code, err, *words):
    assert code == 1, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    for word in words:
        assert word in lines[0], lines[0]


def corrupt_store(path, socks=600):
    """A store with ``socks`` sightings whose table and index root pages are overwritten."""
    store = Store(str(path))
    pipe = Pipeline(store, EngineConfig(), source="test")
    feed_socks(pipe, *["Google", "Mongo", "Github"] * (socks // 3))
    pipe.commit()
    session = pipe.session
    store.close()  # the last connection checkpoints the WAL into the file
    conn = sqlite3.connect(str(path))
    page_size = conn.execute("pragma page_size").fetchone()[0]
    roots = [r[0] for r in conn.execute("select rootpage from sqlite_master where tbl_name = 'sightings'")]
    conn.close()
    with open(str(path), "r+b") as f:
        for root in roots:
            f.seek((root - 1) * page_size)
            f.write(b"\x55" * 64)
    return session


# --- corrupt store --------------------------------------------------------


def test_a_corrupt_store_is_one_clear_line_in_every_command(tmp_path):
    db = tmp_path / "bad.db"
    corrupt_store(db)
    with pytest.raises(StoreCorrupt, match="doctor"):
        Store(str(db)).pairs(1)
    for args in (["pairs"], ["sessions"], ["replay", LOG], ["reset"]):
        code, _, err = sortcore(args[0], "--db", db, *args[1:])
        assert_one_clear_line(code, err, str(db), "damaged", "sortcore doctor")
    code, _, err = sortcore("--debug", "pairs", "--db", db)
    assert code == 1 and "Traceback" in err and "StoreCorrupt" in err


def test_not_a_database_is_a_clear_line(tmp_path):
    db = tmp_path / "junk.db"
    db.write_bytes(b"this is not sqlite" * 300)
    code, _, err = sortcore("pairs", "--db", db)
    assert_one_clear_line(code, err, str(db), "damaged")


# --- one store, one service -----------------------------------------------

HOLD = """
import sys
from sortcore.store.database import Store
store = Store(sys.argv[1], exclusive=True, owner="sortcore serve --db x")
print("locked", flush=True)
sys.stdin.read()
"""


def test_a_second_long_running_writer_is_refused_naming_the_holder(tmp_path):
    db = str(tmp_path / "one.db")
    holder = subprocess.Popen([sys.executable, "-c", HOLD, db], env=env(), stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline() == b"locked\n"
        with pytest.raises(StoreLocked) as info:
            Store(db, exclusive=True, owner="sortcore run")
        assert info.value.pid == holder.pid and info.value.command == "sortcore serve --db x"
        assert str(holder.pid) in str(info.value) and "sortcore serve" in str(info.value)
        code, out, err = sortcore("pairs", "--db", db, "--json")  # short commands keep working
        assert code == 1 and "no session yet" in err
        assert sortcore("replay", "--db", db, "--json", LOG)[0] == 0
    finally:
        holder.kill()
        holder.wait()
    store = Store(db, exclusive=True, owner="sortcore run")  # a killed holder leaves no stale lock
    with pytest.raises(StoreLocked):  # in one process too: a flock per open file
        Store(db, exclusive=True)
    store.close()
    Store(db, exclusive=True).close()  # released on close


def test_a_database_locked_too_long_is_store_busy_then_works(tmp_path):
    db = str(tmp_path / "busy.db")
    Store(db).close()
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    store = Store(db, busy_timeout=0.1)
    with pytest.raises(StoreBusy, match="locked"):
        store.new_session("sighting", {})
    other.execute("ROLLBACK")
    assert store.new_session("sighting", {}) == 1


# --- disk full ------------------------------------------------------------


def test_disk_full_is_store_full_and_the_batch_retries(small_disk):
    db = str(small_disk / "socks.db")
    store = Store(db)
    pipe = Pipeline(store, EngineConfig(), source="test")
    t = feed_socks(pipe, "Google", "Mongo")
    pipe.commit()
    filler = fill(small_disk)
    feed_socks(pipe, "Google", "Github", start=t)
    for i in range(300):
        pipe.reject(DeadLetter("t", i, "bad", "x" * 1000))
    with pytest.raises(StoreFull, match="full"):
        pipe.commit()
    assert [s["image"] for s in sightings(store, pipe.session)] == ["Google", "Mongo"]
    assert store.conn.execute("pragma integrity_check").fetchone()[0] == "ok"
    with pytest.raises(StoreFull):
        Store(str(small_disk / "new.db"))
    code, _, err = sortcore("replay", "--db", small_disk / "cli.db", LOG)
    assert_one_clear_line(code, err, "full")
    filler.unlink()
    pipe.commit()  # the same batch, once space returns
    assert [s["image"] for s in sightings(store, pipe.session)] == ["Google", "Mongo", "Google", "Github"]
    assert store.dead_letter_count(pipe.session) == 300
    store.close()


# --- private files ----------------------------------------------------------


@pytest.mark.parametrize("umask", [0o000, 0o022])
def test_the_store_and_its_wal_shm_and_lock_are_0600(tmp_path, umask):
    old = os.umask(umask)
    try:
        db = str(tmp_path / "private.db")
        store = Store(db, exclusive=True)
        store.new_session("sighting", {})
        for path in (db, db + "-wal", db + "-shm", db + ".lock"):
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
        store.close()
    finally:
        os.umask(old)


# --- dead letters and outbox bounded ---------------------------------------


def test_dead_letters_are_bounded_by_rows_and_bytes_oldest_first(tmp_path):
    store = Store(str(tmp_path / "dl.db"), max_dead_letters=5, max_dead_letter_bytes=2500)
    session = store.new_session("sighting", {})
    store.commit(session, dead_letters=[DeadLetter("t", i, "bad", "r%d" % i) for i in range(8)])
    assert [d["line"] for d in store.dead_letters()] == [3, 4, 5, 6, 7]
    store.commit(session, dead_letters=[DeadLetter("t", 100 + i, "bad", "y" * 1000) for i in range(3)])
    assert [d["line"] for d in store.dead_letters()] == [101, 102]
    assert store.dead_letters_received() == 11
    defaults = Store(str(tmp_path / "d.db"))
    assert (defaults.max_dead_letters, defaults.max_dead_letter_bytes) == (10000, 5 * 1024 * 1024)


def test_replay_counts_every_dead_letter_beyond_the_kept_ones(tmp_path):
    from sortcore.offline.replay import replay

    log = tmp_path / "x.log"
    log.write_bytes(LOG.read_bytes() + b"garbage\n" * 7)
    store = Store(str(tmp_path / "s.db"), max_dead_letters=3)
    result = replay(store, [str(log)])
    assert result.dead_letters == 7 and store.dead_letter_count(result.session) == 3
    assert store.dead_letters_received() == 7
    assert store.conn.execute("pragma synchronous").fetchone()[0] == 2  # FULL again after the replay


def test_prune_drops_only_old_rows_every_destination_acknowledged(tmp_path):
    now = [1000.0]
    store = Store(str(tmp_path / "ob.db"), clock=lambda: now[0])
    session = store.new_session("sighting", {})
    store.commit(session, outbox=[(i, "sockpairs", "{}") for i in range(4)])
    ids = [r["id"] for r in store.pending()]
    store.mark_sent(ids[:3])
    store.mark_sent(ids[:1], destination="greengrass")
    now[0] = 5000.0
    store.mark_sent(ids[2:3], destination="greengrass")  # acknowledged late: not old yet
    assert store.prune(3600, destinations=["mqtt", "greengrass"]) == 1
    left = [r[0] for r in store.conn.execute("select id from outbox order by id")]
    assert left == ids[1:]  # 1: greengrass lacks it; 2: acked 0 s ago; 3: never sent
    assert [r["id"] for r in store.pending()] == ids[3:]
    assert [r["id"] for r in store.pending(destination="greengrass")] == [ids[1], ids[3]]
    now[0] = 9000.0
    assert store.prune(3600, destinations=["mqtt", "greengrass"]) == 1  # row 2


def test_prune_bounds_the_outbox_by_rows_and_never_drops_an_unsent_one(tmp_path):
    store = Store(str(tmp_path / "rows.db"), clock=lambda: 1000.0)
    session = store.new_session("sighting", {})
    store.commit(session, outbox=[(i, "sockpairs", "{}") for i in range(10)])
    ids = [r["id"] for r in store.pending(limit=20)]
    store.mark_sent(ids[:8])
    store.mark_sent(ids[:6], destination="greengrass")
    # young rows (retention not reached): only the row bound prunes, oldest sent everywhere first
    assert store.prune(3600, destinations=["mqtt", "greengrass"], max_rows=7) == 3
    assert [r[0] for r in store.conn.execute("select id from outbox order by id")] == ids[3:]
    assert store.prune(3600, destinations=["mqtt", "greengrass"], max_rows=1) == 3  # ids 3-5; 6-9 lack one
    assert [r[0] for r in store.conn.execute("select id from outbox order by id")] == ids[6:]
    assert store.conn.execute("select count(*) from deliveries").fetchone()[0] == 2  # 6, 7 by mqtt


# --- hostile payloads -------------------------------------------------------


def payload(image, **extra):
    return json.dumps(dict({"image": image, "probability": 90}, **extra)).encode()


def test_topic_camera_is_capped_like_the_payload_camera():
    assert decode_payload(payload("Google"), "c" * 64).camera == "c" * 64
    with pytest.raises(BadFrame, match="camera name .* longer than 64"):
        decode_payload(payload("Google"), "c" * 65)
    with pytest.raises(BadFrame, match="camera"):
        decode_payload(payload("Google", camera="cam\u001b[2J"))


@pytest.mark.parametrize("image", ["ZZ\u0000\u0007\u001b[31m", "\u001b]0;owned\u0007", "Goo\ngle", "a\u0085b"])
def test_labels_with_control_characters_are_dead_letters(image):
    with pytest.raises(BadFrame, match="control characters"):
        decode_payload(payload(image))


def test_label_allow_list_keeps_blank_and_unknown():
    labels = label_set(["Google", "Mongo"])
    for image in ("Google", " Mongo ", "Blank", "Unknown"):
        decode_payload(payload(image), labels=labels)
    with pytest.raises(BadFrame, match="not one of the model's labels"):
        decode_payload(payload("Gogle"), labels=labels)


def test_replay_labels_turns_unknown_designs_into_dead_letters(tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("Google\n\nMongo\n")
    log = tmp_path / "x.log"
    log.write_bytes(b"".join(b'%d.0 {"image": "%s", "probability": 90}\n' % (i, name)
                             for i, name in enumerate([b"Google", b"Gogle", b"Unknown", b"Blank"])))
    result = cli_runner().invoke(main, ["replay", "--db", str(tmp_path / "s.db"), "--json",
                                        "--labels", str(labels), str(log)])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout.splitlines()[-1])
    assert out["frames"] == 3 and out["dead_letters"] == 1
    reason = sqlite3.connect(str(tmp_path / "s.db")).execute("select reason from dead_letters").fetchone()[0]
    assert "'Gogle' is not one of the model's labels" in reason


# --- logs that are no logs ------------------------------------------------


def test_replay_refuses_a_fifo_at_once(tmp_path):
    fifo = tmp_path / "frames.fifo"
    os.mkfifo(str(fifo))
    code, _, err = sortcore("replay", "--db", tmp_path / "s.db", fifo, timeout=30)  # it used to hang here
    assert_one_clear_line(code, err, "FIFO")


def test_replay_refuses_a_device(tmp_path):
    code, _, err = sortcore("replay", "--db", tmp_path / "s.db", "/dev/zero", timeout=30)
    assert_one_clear_line(code, err, "/dev/zero", "device")


@pytest.mark.parametrize("kind, words", [
    ("gzip", ["binary or compressed"]), ("utf16", ["binary or compressed"]),
    ("binary", ["binary or compressed"]), ("empty", ["empty file"]), ("blank", ["empty file"]),
])
def test_binary_compressed_and_empty_logs_say_so(tmp_path, kind, words):
    data = LOG.read_bytes()
    content = {"gzip": gzip.compress(data), "utf16": data.decode().encode("utf-16"),
               "binary": bytes(range(256)) * 40, "empty": b"", "blank": b"\n\n  \n"}[kind]
    log = tmp_path / ("x." + kind)
    log.write_bytes(content)
    for extra in ([], ["--fps", "3.5"]):
        result = cli_runner().invoke(main, ["replay", "--db", str(tmp_path / "s.db")] + extra + [str(log)])
        assert result.exit_code == 1 and "--fps" not in result.stderr, result.stderr
        assert_one_clear_line(1, result.stderr, *words)
    assert sqlite3.connect(str(tmp_path / "s.db")).execute("select count(*) from sessions").fetchone()[0] == 0


def test_one_binary_line_in_a_log_is_only_a_dead_letter(tmp_path):
    lines = LOG.read_bytes().splitlines()
    log = tmp_path / "x.log"
    log.write_bytes(b"\n".join([b"\x00\xff\xfe\x89PNG binary"] + lines) + b"\n")
    result = cli_runner().invoke(main, ["replay", "--db", str(tmp_path / "s.db"), "--json", str(log)])
    out = json.loads(result.stdout.splitlines()[-1])
    assert out["dead_letters"] == 1 and out["frames"] == len(lines)


# --- the CLI meets OS errors too ------------------------------------------


def test_os_errors_are_one_line(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = sortcore("reset", "--db", blocker / "sub" / "s.db")  # a file where a folder must be
    assert_one_clear_line(code, err, "is a file, not a folder")
    code, _, err = sortcore("pairs", "--db", blocker / "sub" / "s.db")  # a reader makes nothing
    assert_one_clear_line(code, err, "no store at")
