"""docs/store.md stays true: its commands, exactly as written, run on a store made by the real
`sortcore replay` while a long-running writer holds that store open in a write transaction, and
answer what `sortcore pairs --json` says. sqlite-utils and Datasette are the venv's console
scripts, each a subprocess."""

import json
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from sortcore.store.database import Store

from .shared import BAD_LINES, FRAME_LOGS

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "store.md").read_text()
BIN = Path(sys.executable).parent
DOC_LOG = "../shared/frame-logs/session-1.log"
KEYS = ("image", "number_socks_seen", "pair_seen", "pairs")

pytestmark = pytest.mark.skipif(not (FRAME_LOGS / "session-1.log").exists(),
                                reason="../shared/frame-logs is not beside the repository")


def documented():
    """Every ``$ `` line of the page's console blocks, in order."""
    blocks = re.findall(r"```console\n(.*?)```", DOC, re.S)
    return [line.strip()[2:] for block in blocks for line in block.splitlines() if line.strip().startswith("$ ")]


def program(name):
    if name == "sortcore":
        return [sys.executable, "-m", "sortcore"]  # this tree's package, as its console script runs it
    found = BIN / name if (BIN / name).exists() else shutil.which(name)
    if found is None:
        pytest.skip("%s is not installed (scripts/setup.sh installs it)" % name)
    return [str(found)]


def run(line, cwd, log):
    argv = shlex.split(line.replace(DOC_LOG, str(log)))
    done = subprocess.run(program(argv[0]) + argv[1:], cwd=str(cwd), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "XDG_DATA_HOME": str(cwd), "HOME": str(cwd)})
    assert done.returncode == 0, (line, done.stdout, done.stderr)
    return done.stdout


def mixed_log(path):
    """session-1's frames with lines that are no frame among them and an unrecognised sock."""
    lines = (FRAME_LOGS / "session-1.log").read_bytes().splitlines()
    last = float(lines[-1].split()[0])
    unknown = [b'%.3f {"image": "Unknown", "probability": 90}' % (last + 5 + i * 0.25) for i in range(10)]
    path.write_bytes(b"\n".join(lines[:40] + BAD_LINES[:4] + lines[40:] + unknown) + b"\n")
    return path, [41, 42, 43, 44]


def run_page(cwd, log):
    """Run the page's commands; the ones after `sortcore pairs` while a writer holds the store
    with a sock it has not committed. Returns {command line: stdout}."""
    out, writer = {}, None
    try:
        for line in documented():
            out[line] = run(line, cwd, log)
            if line.startswith("sortcore pairs"):
                writer = Store(str(cwd / "socks.db"), exclusive=True, owner="test_store_cli")
                writer.conn.execute("begin immediate")
                writer.conn.execute("insert into sightings (session, image, confirmed_at) "
                                    "select max(id), 'Google', 0 from sessions")
    finally:
        if writer is not None:
            writer.conn.execute("rollback")
            writer.close()
    return out


def command(out, start):
    (line,) = [line for line in out if line.startswith(start)]
    return out[line]


@pytest.mark.parametrize("case", ["as documented", "dead letters and an unknown sock"])
def test_the_documented_commands_agree_with_sortcore_pairs(case, tmp_path):
    log, bad_lines = (DOC_LOG, []) if case == "as documented" else mixed_log(tmp_path / "mixed.log")
    log = FRAME_LOGS / "session-1.log" if log == DOC_LOG else log
    out = run_page(tmp_path, log)
    pairs = json.loads(command(out, "sortcore pairs"))
    socks = [{k: row[k] for k in KEYS} for row in pairs["socks"]]
    assert socks and pairs["unknown"] == (1 if bad_lines else 0)

    counts = {t["table"]: t["count"] for t in json.loads(command(out, "sqlite-utils tables"))}
    sightings = json.loads(command(out, "sqlite-utils rows socks.db sightings"))
    assert counts["sightings"] == len(sightings) == sum(r["number_socks_seen"] for r in socks) + pairs["unknown"]
    assert Counter(s["image"] for s in sightings if s["image"] != "Unknown") == \
        {r["image"]: r["number_socks_seen"] for r in socks}
    assert json.loads(command(out, "sqlite-utils query socks.db \"select image")) == socks
    assert json.loads(command(out, "sqlite-utils query socks.db \"select count")) == [{"unknown": pairs["unknown"]}]
    dead = json.loads(command(out, "sqlite-utils rows socks.db dead_letters"))
    assert [d["line"] for d in dead] == bad_lines and counts["dead_letters"] == len(bad_lines)
    assert all(set(d) == {"line", "reason"} and d["reason"] for d in dead)
    assert json.loads(command(out, "datasette")) == socks

    assert command(out, "sqlite3 -readonly socks.db \"select").strip() == str(len(sightings))
    with sqlite3.connect("file:%s?mode=ro" % (tmp_path / "copy.db"), uri=True) as copy:
        copy.row_factory = sqlite3.Row
        assert [dict(r) for r in copy.execute("select * from current_pairs")] == socks


def test_the_page_names_every_table_and_view_of_a_store(tmp_path):
    run(documented()[0], tmp_path, FRAME_LOGS / "session-1.log")
    with sqlite3.connect("file:%s?mode=ro" % (tmp_path / "socks.db"), uri=True) as conn:
        names = {n for (n,) in conn.execute("select name from sqlite_master where type in ('table', 'view')")}
    section = DOC.split("## Tables and views", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| (?:view )?`(\w+)`", section, re.M))
    assert listed == names


def test_the_page_says_truly_where_the_package_uses_sqlite_utils():
    """Nowhere at run time: no module of sortcore/ imports it (docs/store.md, last section)."""
    importers = [path for path in (ROOT / "sortcore").rglob("*.py")
                 if re.search(r"^\s*(import|from)\s+sqlite_utils", path.read_text(encoding="utf-8"), re.M)]
    assert importers == []
    assert "Nowhere at run time" in DOC
