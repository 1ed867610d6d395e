"""Where the shared material lives: ../shared beside the repository (never copied in)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
FRAME_LOGS = SHARED / "frame-logs"
PHOTOS = SHARED / "sock-photos"

# Lines of a '%U %p' log that are no frame, each for its own reason.
BAD_LINES = [
    b"not json at all",
    b"1790011615.0 [1, 2, 3]",
    b'1790011615.0 {"probability": 50}',
    b'1790011615.0 {"image": "Google", "probability": "high"}',
    b'1790011615.0 {"image": "Google", "probability": NaN}',
    b'1790011615.0 {"image": "Google", "probability": 250}',
    b'1790011615.0 {"image": "' + b"G" * 100 + b'", "probability": 50}',
    b"1790011615.0 " + b"x" * 200000,
    b"1790011615.0 \x00\xff\xfe\x89PNG binary",
    b'1790011615.0 {"image": "Google", "probability": 50, "ts": "soon"}',
    # finite, but window numbers this far out overflowed the store's 64-bit integers
    b'179001161512345678901234 {"image": "Google", "probability": 50}',
    b'1790011615.0 {"image": "Google", "probability": 50, "ts": 1e300}',
    b'1790011615.0 {"image": "Google", "probability": 50, "ts": -1e12}',
]


def truth_cases():
    """(log path, truth path, fps) for every log with a truth file, all formats."""
    cases = []
    for truth in sorted(FRAME_LOGS.glob("*.truth.json")):
        stem = truth.name[: -len(".truth.json")]
        for suffix, fps in ((".log", None), (".json.log", None), (".plain.log", 3.5)):
            log = FRAME_LOGS / (stem + suffix)
            if log.exists():
                cases.append((log, truth, fps))
    return cases


def cli_runner():
    """A CliRunner with stdout and stderr apart on click 8.1 (the lambda's) and 8.2+."""
    from click.testing import CliRunner

    try:
        return CliRunner(mix_stderr=False)
    except TypeError:  # click >= 8.2 always keeps them apart
        return CliRunner()


def import_lambda_handler():
    """The Greengrass handler module, imported as the lambda runtime would."""
    import sys

    sys.path.insert(0, str(ROOT / "greengrass_lambda"))
    try:
        import sock_lambda
    finally:
        sys.path.pop(0)
    return sock_lambda


def sightings(store, session):
    """The session's sightings rows, oldest first (plain SQL: tests read the store as users can)."""
    cursor = store.conn.execute("select * from sightings where session = ? order by id", (session,))
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor]
