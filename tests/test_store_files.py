"""What commands do to files: read-only commands create nothing and read a read-only store;
a store path under a regular file is one clear line (issue 25, files)."""

import json
import os
import subprocess
import sys

import pytest

from tests.shared import ROOT, SHARED

LOG = SHARED / "frame-logs" / "window-edges.log"


def sortcore(*args, cwd=None):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "sortcore"] + list(args), env=env, cwd=cwd,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=60)


def test_read_only_commands_create_no_folder_and_no_file(tmp_path):
    for command in ("pairs", "sessions"):
        done = sortcore(command, "--db", str(tmp_path / "a" / "b" / "x.db"))
        assert done.returncode == 1 and done.stderr.strip() == \
            "Error: no store at %s: replay, count, run or serve make one" % (tmp_path / "a" / "b" / "x.db")
    assert list(tmp_path.iterdir()) == []
    db = tmp_path / "s.db"
    assert sortcore("replay", str(LOG), "--db", str(db)).returncode == 0
    before = sorted(p.name for p in tmp_path.iterdir())
    assert "s.db-wal" not in before  # the writer closed and checkpointed
    for command in ("pairs", "sessions"):
        assert sortcore(command, "--db", str(db), "--json").returncode == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.skipif(os.geteuid() != 0, reason="a read-only bind mount needs root")
def test_a_store_on_a_read_only_mount_is_read(tmp_path):
    db = tmp_path / "rw" / "s.db"
    assert sortcore("replay", str(LOG), "--db", str(db)).returncode == 0
    ro = tmp_path / "ro"
    ro.mkdir()
    mounted = subprocess.run(["mount", "--bind", str(db.parent), str(ro)], stderr=subprocess.PIPE)
    if mounted.returncode != 0:
        pytest.skip("cannot bind-mount: %s" % mounted.stderr.decode().strip())
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(ro)], check=True)
        pairs = sortcore("pairs", "--json", "--db", str(ro / "s.db"))
        written = sortcore("reset", "--db", str(ro / "s.db"))
    finally:
        subprocess.run(["umount", "-l", str(ro)], check=False)
    assert pairs.returncode == 0, pairs.stderr
    assert json.loads(pairs.stdout)["socks"] and "Traceback" not in written.stderr
    assert written.returncode == 1 and written.stderr.startswith("Error: ")


def test_a_store_path_under_a_regular_file_is_one_line(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    db = str(tmp_path / "file" / "sub" / "x.db")
    line = "Error: cannot make the store's folder %s: %s is a file, not a folder" % (
        tmp_path / "file" / "sub", tmp_path / "file")
    for args in (["replay", str(LOG)], ["reset"]):
        done = sortcore(*args, "--db", db)
        assert done.returncode == 1 and done.stderr.strip() == line, done.stderr
