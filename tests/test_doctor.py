"""``sortcore doctor``: integrity check, a recovered copy of a damaged store, and what to do next."""

import shutil
import sqlite3

import pytest

from sortcore.offline import doctor
from sortcore.cli import main
from sortcore.store.database import SCHEMA_VERSION, Store

from .shared import cli_runner
from .test_faults import corrupt_store

pytestmark = pytest.mark.compat


def run(*args):
    return cli_runner().invoke(main, ["doctor"] + [str(a) for a in args])


def test_a_sound_store_is_ok(tmp_path):
    db = tmp_path / "ok.db"
    Store(str(db)).close()
    for extra in ([], ["--quick"]):
        result = run("--db", db, *extra)
        assert result.exit_code == 0 and ": ok (" in result.stdout
    assert not list(tmp_path.glob("*.recovered*"))


def test_a_missing_store_is_one_line(tmp_path):
    result = run("--db", tmp_path / "none.db")
    assert result.exit_code == 1 and "no store at" in result.stderr
    assert not (tmp_path / "none.db").exists()


def test_a_damaged_store_gets_a_recovered_copy_and_next_steps(tmp_path):
    db = tmp_path / "bad.db"
    corrupt_store(db)
    result = run("--db", db)
    assert result.exit_code == 1
    out = result.stdout
    assert "is damaged" in out and "recovered copy (" in out and "next:" in out
    copy = tmp_path / "bad.recovered.db"
    assert doctor.check(str(copy)) == []
    conn = sqlite3.connect(str(copy))
    assert conn.execute("select count(*) from sessions").fetchone()[0] == 1
    assert conn.execute("select count(*) from outbox").fetchone()[0] == 600
    assert conn.execute("select value from meta where key = 'schema_version'").fetchone()[0] == str(SCHEMA_VERSION)
    if "(sqlite3 .recover)" in out:  # it reads the leaf pages around the damaged roots
        assert conn.execute("select count(*) from sightings").fetchone()[0] == 600
    else:
        assert "lost: sightings" in out
    Store(str(copy)).close()
    assert "bad.recovered-2.db" in run("--db", db).stdout  # never overwrites a copy


@pytest.mark.skipif(not shutil.which("sqlite3"), reason="the sqlite3 command line is not installed")
def test_sqlite3_recover_is_tried_first(tmp_path):
    db = tmp_path / "bad.db"
    corrupt_store(db)
    copy = doctor.recover(str(db))
    assert copy.method == "sqlite3 .recover" or copy.lost[0].startswith("sqlite3 .recover failed")


def test_without_sqlite3_the_readable_tables_are_copied(tmp_path):
    db = tmp_path / "bad.db"
    corrupt_store(db)
    copy = doctor.recover(str(db), sqlite3_cli=None)
    assert copy.method == "row copy"
    assert copy.rows["sessions"] == 1 and copy.rows["meta"] >= 1
    assert any(part.startswith("sightings") for part in copy.lost)
    assert doctor.check(copy.path) == []


def test_next_steps_name_both_files():
    steps = doctor.next_steps("/d/s.db", "/d/s.recovered.db")
    assert any("mv /d/s.recovered.db /d/s.db" in step for step in steps)


def test_an_unrecoverable_file_leaves_no_copy_at_all(tmp_path):
    """Before: a 0-byte bad.recovered.db was left behind when nothing could be read."""
    db = tmp_path / "bad.db"
    db.write_bytes(b"SQLite format 3\0" + b"\xff" * 4080)  # a header, then garbage
    for cli in ("sqlite3", None):
        with pytest.raises(Exception) as failed:
            doctor.recover(str(db), sqlite3_cli=cli)
        assert "cannot" in str(failed.value)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.db"]
