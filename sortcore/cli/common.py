"""Options and helpers shared by the CLI commands."""

import functools
import os

import click

from ..engine import MODES, EngineConfig
from ..errors import SortcoreError
from ..store import Store


def default_db() -> str:
    """``$XDG_DATA_HOME/sortcore/sortcore.db`` (``~/.local/share/...``)."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "sortcore", "sortcore.db")


def db_option(func):
    return click.option(
        "--db", "db_path", type=click.Path(dir_okay=False), default=default_db, show_default="~/.local/share/sortcore/sortcore.db",
        help="SQLite file of sessions, sightings and dead letters.",
    )(func)


def engine_options(func):
    """Add --mode/--window/--min-frames/--gap/--min-probability/--ignore; pass ``config``."""

    @click.option("--mode", type=click.Choice(MODES), default="sighting", show_default=True,
                  help="sighting: count socks; tumbling: the original ksqlDB query.")
    @click.option("--window", type=float, default=5.0, show_default=True, help="Seconds.")
    @click.option("--min-frames", type=int, default=4, show_default=True,
                  help="Frames of a design that make a sock.")
    @click.option("--gap", type=float, default=1.5, show_default=True,
                  help="Seconds without a design's frame that end its run (sighting mode).")
    @click.option("--min-probability", type=float, default=0.0, show_default=True,
                  help="Frames below this probability (percent) are not counted.")
    @click.option("--ignore", multiple=True, default=["Blank"], show_default=True,
                  help="Labels that are not socks (repeatable, case-insensitive).")
    @functools.wraps(func)
    def wrapper(*args, mode, window, min_frames, gap, min_probability, ignore, **kwargs):
        try:
            config = EngineConfig(mode, window, min_frames, gap, min_probability, tuple(ignore))
        except SortcoreError as exc:
            raise click.BadParameter(str(exc))
        return func(*args, config=config, **kwargs)

    return wrapper


def open_store(path: str) -> Store:
    """Open (and create) the store, making its folder; errors become ClickException."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
        return Store(path)
    except (OSError, SortcoreError) as exc:
        raise click.ClickException(str(exc))


def pairs_table(rows, title: str):
    """The pairs table as a rich Table, with the seed's ksqlDB column names."""
    from rich.table import Table

    from ..messages import rows_as_dicts

    table = Table(title=title)
    for column in ("image", "number_socks_seen", "pair_seen", "pairs"):
        table.add_column(column, justify="right" if column in ("number_socks_seen", "pairs") else "left")
    for row in rows_as_dicts(rows):
        table.add_row(row["image"], str(row["number_socks_seen"]), row["pair_seen"], str(row["pairs"]))
    return table
