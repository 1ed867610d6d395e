"""The SQLite store: schema, atomic batches, outbox order, views readable by sqlite-utils."""

import json
import sqlite3
import subprocess
import sys

import pytest

from sortcore.core.engine import UNKNOWN, Engine, EngineConfig, pairs_row
from sortcore.core.errors import StoreError
from sortcore.core.frames import DeadLetter, Frame
from sortcore.store.pipeline import Pipeline
from sortcore.core.messages import state_message
from sortcore.store.database import SCHEMA_VERSION, Store
from tests.shared import sightings

pytestmark = pytest.mark.compat


@pytest.fixture
def store(tmp_path):
    s = Store(str(tmp_path / "socks.db"), clock=lambda: 1000.0)
    yield s
    s.close()


def feed_socks(pipe, *designs, start=0.0):
    """Socks 35 s apart: further than the lateness allowance, so each is published at
    once (a sock of a design seen again sooner waits, see tests/test_event_time.py)."""
    t = start
    for design in designs:
        for _ in range(5):
            pipe.feed(Frame(design, 90.0, t))
            t += 0.3
        t += 35.0
    return t


def test_new_store_has_schema_version_wal_and_views(store):
    assert store.conn.execute("pragma journal_mode").fetchone()[0] == "wal"
    assert store.conn.execute("select value from meta where key='schema_version'").fetchone()[0] == str(SCHEMA_VERSION)
    assert {"pairs", "current_pairs"} <= {r[0] for r in store.conn.execute("select name from sqlite_master where type = 'view'")}


def test_a_newer_schema_is_refused(tmp_path):
    path = str(tmp_path / "new.db")
    Store(path).close()
    conn = sqlite3.connect(path)
    conn.execute("update meta set value = '99' where key = 'schema_version'")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="schema version 99"):
        Store(path)


def test_not_a_database_is_a_store_error(tmp_path):
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError):
        Store(str(path))


def test_pipeline_writes_socks_outbox_and_pairs(store):
    pipe = Pipeline(store, EngineConfig(), clock=lambda: 5.0)
    feed_socks(pipe, "Google", "Mongo", "Google")
    pipe.reject(DeadLetter("sockfound", None, "payload is not JSON", "oops"))
    pipe.commit()
    assert store.pairs(pipe.session) == [
        {"image": "Google", "number_socks_seen": 2, "pair_seen": "Pair", "pairs": 1},
        {"image": "Mongo", "number_socks_seen": 1, "pair_seen": "Un-matched", "pairs": 0},
    ]
    pending = store.pending()
    assert [json.loads(r["payload"])["sighting"] for r in pending] == [1, 2, 3]
    assert [json.loads(r["payload"])["number_socks_seen"] for r in pending] == [1, 1, 2]
    store.mark_sent([pending[0]["id"]])
    assert [r["id"] for r in store.pending()] == [pending[1]["id"], pending[2]["id"]]
    assert store.dead_letters(pipe.session)[0]["reason"] == "payload is not JSON"


def test_a_failed_batch_writes_nothing(store):
    pipe = Pipeline(store, EngineConfig())
    feed_socks(pipe, "Google")
    pipe.reject("not a dead letter")  # breaks the batch half-way
    with pytest.raises(AttributeError):
        pipe.commit()
    assert sightings(store, pipe.session) == [] and store.pending() == []
    assert store.session(pipe.session)["frames"] == 0


def test_restart_resumes_the_open_session_and_ids_continue(store):
    pipe = Pipeline(store, EngineConfig())
    t = feed_socks(pipe, "Google", "Mongo")
    pipe.commit()
    again = Pipeline(store, EngineConfig())  # as after a crash or restart
    assert again.session == pipe.session
    feed_socks(again, "Google", start=t)
    again.commit()
    assert [s["id"] for s in sightings(store, pipe.session)] == [1, 2, 3]
    new = again.reset()
    assert new != pipe.session
    feed_socks(again, "Github", start=t + 100)
    again.commit()
    assert [s["id"] for s in sightings(store, new)] == [4]
    assert store.session(pipe.session)["status"] == "done"


def test_a_reset_publishes_a_waiting_sock_in_the_session_it_belongs_to(store):
    pipe = Pipeline(store, EngineConfig())
    for start in (0.0, 3.0):  # the second sock of a design within the allowance waits
        for k in range(4):
            pipe.feed(Frame("Google", 90.0, start + 0.25 * k))
    assert pipe.waiting == 1
    old = pipe.session
    assert pipe.reset() != old
    assert [s["image"] for s in sightings(store, old)] == ["Google", "Google"]
    assert len(store.pending()) == 2 and pipe.waiting == 0


def test_a_session_resumes_with_another_lateness_but_not_with_another_gap(store):
    first = Pipeline(store, EngineConfig()).session
    assert Pipeline(store, EngineConfig(lateness=60.0, max_cameras=5)).session == first
    assert Pipeline(store, EngineConfig(gap=2.0)).session != first


def test_a_different_config_starts_a_new_session(store):
    first = Pipeline(store, EngineConfig()).session
    assert Pipeline(store, EngineConfig(mode="tumbling")).session != first


def test_views_read_with_the_sqlite_utils_cli(store):
    pipe = Pipeline(store, EngineConfig())
    feed_socks(pipe, "Google", "Google")
    pipe.commit()
    out = subprocess.run(
        [sys.executable, "-m", "sqlite_utils", "rows", store.path, "current_pairs"],
        check=True, stdout=subprocess.PIPE, universal_newlines=True,
    ).stdout
    assert json.loads(out) == [{"image": "Google", "number_socks_seen": 2, "pair_seen": "Pair", "pairs": 1}]


def test_engine_state_round_trips_through_the_store(store):
    pipe = Pipeline(store, EngineConfig())
    for i in range(3):  # an open run, not yet a sock
        pipe.feed(Frame("Google", 90.0, i * 0.3))
    pipe.commit()
    again = Pipeline(store, EngineConfig())
    again.feed(Frame("Google", 90.0, 0.9))
    assert again.engine.counts == {"Google": 1}
    assert again.engine.snapshot() == Engine(EngineConfig(), again.engine.snapshot()).snapshot()


def test_only_the_cameras_that_changed_are_written_and_an_ended_session_keeps_none(store):
    pipe = Pipeline(store, EngineConfig())
    for camera in ("left", "right"):
        pipe.feed(Frame("Google", 90.0, 0.0, camera))
    pipe.commit()
    rows = lambda: dict(store.conn.execute("select camera, state from engine_cameras where session = ?",
                                           [pipe.session]).fetchall())
    before = rows()
    assert sorted(before) == ["left", "right"]
    pipe.feed(Frame("Google", 90.0, 0.3, "right"))
    pipe.commit()
    after = rows()
    assert after["left"] == before["left"] and after["right"] != before["right"]
    head = store.session(pipe.session)["engine_state"]
    assert "cameras" not in head and len(json.dumps(head)) < 200
    again = Pipeline(store, EngineConfig())
    assert again.engine.snapshot() == pipe.engine.snapshot()
    again.reset()
    assert rows() == {}


def test_unrecognised_socks_are_sightings_but_never_pairs_rows(store):
    pipe = Pipeline(store, EngineConfig(), clock=lambda: 5.0)
    feed_socks(pipe, UNKNOWN, "Google", UNKNOWN)
    pipe.commit()
    assert [s["image"] for s in sightings(store, pipe.session)] == [UNKNOWN, "Google", UNKNOWN]
    assert store.pairs(pipe.session) == [{"image": "Google", "number_socks_seen": 1, "pair_seen": "Un-matched",
                                          "pairs": 0}]
    assert store.conn.execute("select image from current_pairs").fetchall() == [("Google",)]
    assert store.unknown(pipe.session) == pipe.unknown == 2
    payloads = [json.loads(r["payload"]) for r in store.pending()]
    assert [(p["image"], p["number_socks_seen"], p["pair_seen"], p["pairs"]) for p in payloads] == [
        (UNKNOWN, 1, "Unrecognised", 0), ("Google", 1, "Un-matched", 0), (UNKNOWN, 2, "Unrecognised", 0)]
    state = state_message(pipe.session, pipe.table(), 5.0, unknown=pipe.unknown)
    assert (state["socks"], state["odd"], state["unknown"]) == (
        [{"image": "Google", "number_socks_seen": 1, "pair_seen": "Un-matched", "pairs": 0}], ["Google"], 2)


def test_the_pairs_view_applies_the_engines_pair_rule(store):
    """One rule: the SQL view (generated from events.PAIRS_SQL) and events.pairs_row agree."""
    session = store.conn.execute("insert into sessions (started_at, mode, config) values (0, 'sighting', '{}')").lastrowid
    for count in range(1, 8):
        store.conn.executemany("insert into sightings (session, image, confirmed_at) values (?, ?, 0)",
                               [(session, "D%d" % count)] * count)
    rows = store.conn.execute("select image, number_socks_seen, pair_seen, pairs from pairs where session = ?",
                              (session,)).fetchall()
    assert rows == [tuple(pairs_row("D%d" % n, n)) for n in range(1, 8)]


def test_an_older_pairs_view_is_brought_up_to_date_on_open(tmp_path):
    path = str(tmp_path / "old.db")
    Store(path).close()
    conn = sqlite3.connect(path)  # the views as the first release wrote them
    conn.executescript(
        "drop view current_pairs; drop view pairs;"
        "create view pairs as select session, image, count(*) as number_socks_seen,"
        " case when count(*) % 2 = 0 then 'Pair' else 'Un-matched' end as pair_seen, count(*) / 2 as pairs"
        " from sightings group by session, image order by session, image;"
        "create view current_pairs as select image, number_socks_seen, pair_seen, pairs from pairs"
        " where session = (select max(id) from sessions);")
    conn.close()
    store = Store(path)
    try:
        pipe = Pipeline(store, EngineConfig())
        feed_socks(pipe, UNKNOWN, UNKNOWN)
        pipe.commit()
        assert store.pairs(pipe.session) == []
        assert store.conn.execute("select * from current_pairs").fetchall() == []
    finally:
        store.close()
    views = sqlite3.connect(path).execute("select sql from sqlite_master where type = 'view'").fetchall()
    Store(path).close()  # up to date: opening again rewrites nothing
    assert sqlite3.connect(path).execute("select sql from sqlite_master where type = 'view'").fetchall() == views



def test_a_version_1_store_gets_one_column_per_meaning(tmp_path):
    """Version 1 kept a replay's place and serve's recent digests in one 'position' column."""
    import sqlite3

    from sortcore.store.schema import V1_TABLES

    path = str(tmp_path / "v1.db")
    conn = sqlite3.connect(path)
    conn.executescript(V1_TABLES)
    conn.execute("insert into meta values ('schema_version', '1')")
    conn.execute("insert into sessions (started_at, mode, config, position) values (1, 'sighting', '{}', ?)",
                 ['{"file": 1, "line": 20, "dead": 2}'])
    conn.execute("insert into sessions (started_at, mode, config, position) values (2, 'sighting', '{}', ?)",
                 ['{"recent": ["ab", "cd"]}'])
    conn.commit()
    conn.close()
    store = Store(path)
    first, second = store.session(1), store.session(2)
    assert first["replay_position"] == {"file": 1, "line": 20, "dead": 2} and first["recent_messages"] is None
    assert second["recent_messages"] == ["ab", "cd"] and second["replay_position"] is None
    assert "position" not in first
    store.close()


def test_a_version_4_store_keeps_its_designs_and_gets_their_socks(tmp_path):
    """Version 4 kept no sock per view: its designs load with owners NULL (nobody's views, so no
    sock of them can be told apart) and no sock pictures; new rows keep both."""
    from sortcore.store.designstore import DesignStore
    from sortcore.store.schema import MIGRATIONS

    path = str(tmp_path / "v4.db")
    conn = sqlite3.connect(path)
    for migrate in MIGRATIONS[:4]:
        migrate(conn)
    conn.execute("insert into meta values ('schema_version', '4')")
    conn.execute("insert into sessions (id, started_at, mode, config) values (1, 1, 'sighting', '{}')")
    conn.execute("insert into new_designs values (1, 'New 1', 1, 2, x'0000', x'00', x'ffd8', 1, 1)")
    conn.commit()
    conn.close()
    store = Store(path)
    try:
        assert store.conn.execute("select value from meta where key = 'schema_version'").fetchone()[0] == "5"
        rows = DesignStore(store)
        (old,) = rows.load(1)
        assert (old["name"], old["owners"], old["socks"], old["picture"]) == ("New 1", None, [], b"\xff\xd8")
        rows.save(1, [dict(old, name="New 2", owners=b"\x07" + bytes(7), socks=[(7, b"jpeg")])])
        assert [(r["name"], r["owners"], r["socks"]) for r in rows.load(1)][1] == ("New 2", b"\x07" + bytes(7),
                                                                                   [(7, b"jpeg")])
    finally:
        store.close()


def test_a_sighting_confirmed_and_closed_in_one_batch_is_written_closed_and_a_later_close_updates(store):
    pipe = Pipeline(store, EngineConfig(), outbox_topic=None)
    feed_socks(pipe, "Google", "Mongo")  # Google closes when Mongo arrives; Mongo stays open
    pipe.commit()
    rows = {r["image"]: r for r in store._query("select * from sightings")}
    assert (rows["Google"]["closed_reason"], rows["Google"]["frames"], rows["Google"]["last_seen"]) == (
        "idle", 5, pytest.approx(1.2))
    assert (rows["Mongo"]["closed_reason"], rows["Mongo"]["last_seen"]) == (None, None)
    assert rows["Mongo"]["frames"] == 4  # as confirmed: the 4th frame confirmed it
    pipe.finish()
    mongo = store._query("select * from sightings where image = 'Mongo'")[0]
    assert (mongo["closed_reason"], mongo["frames"]) == ("end", 5)
