"""Options and helpers shared by the CLI commands."""

import contextlib
import functools

import click

from ..core import settings as table
from ..core.engine import EngineConfig
from ..core.errors import SortcoreError
from ..store.database import Store
from ..store.storefile import make_folder
from .options import click_option


def db_option(func):
    """``--db`` (``SORTCORE_DB``) from the settings table; the command gets ``db_path``."""
    option = click_option(table.BY_NAME["db"], "replay")

    @functools.wraps(func)
    def wrapper(*args, db, **kwargs):
        return func(*args, db_path=db, **kwargs)

    return option(wrapper)


def engine_options(func):
    """The engine's settings (``--mode`` ... ``--ignore``); the command gets ``config``."""
    chosen = [s for s in table.SETTINGS if s.group == "engine"]

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        values = {s.name: kwargs.pop(s.name) for s in chosen}
        try:
            config = EngineConfig(**values)
        except SortcoreError as exc:
            raise click.BadParameter(str(exc))
        return func(*args, config=config, **kwargs)

    for setting in reversed(chosen):
        wrapper = click_option(setting, "replay")(wrapper)
    return wrapper


@contextlib.contextmanager
def live_page(settings: dict):
    """Serve the status page when ``settings['http']`` says where; yield the listeners to add."""
    if not settings.get("http"):
        yield []
        return
    from ..web.live import LiveView
    from ..runtime.secrets_file import read_token
    from ..web.server import parse_address, start_http

    try:
        host, port = parse_address(settings["http"])
        token = read_token(settings["http_token_file"]) if settings.get("http_token_file") else None
    except SortcoreError as exc:
        raise click.BadParameter(str(exc))
    view = LiveView()
    handle = start_http(view, host, port, token, max_clients=settings["http_max_clients"],
                        header_timeout=settings["http_header_timeout"])
    click.echo("status page on %s%s" % (handle.url, "" if token else " (reset needs --http-token-file)"),
               err=True)
    try:
        yield [view]
    finally:
        handle.close()


def open_store(path: str, owner: str = "", readonly: bool = False) -> Store:
    """Open (and create) the store, making its folder; errors become ClickException.

    ``owner``: a long-running writer (``sortcore serve``) takes the store's exclusive
    lock; a second one is refused at once with the holder's pid and command.
    ``readonly`` (pairs, sessions): creates no folder and no file, and reads a store on a
    read-only file or folder."""
    try:
        if readonly:
            return Store(path, readonly=True)
        make_folder(path)
        return Store(path, exclusive=bool(owner), owner=owner)
    except (OSError, SortcoreError) as exc:
        raise click.ClickException(str(exc))


def pairs_table(rows, title: str):
    """The pairs table as a rich Table, with the seed's ksqlDB column names."""
    from rich.table import Table

    from ..core.messages import rows_as_dicts

    table = Table(title=title)
    for column in ("image", "number_socks_seen", "pair_seen", "pairs"):
        table.add_column(column, justify="right" if column in ("number_socks_seen", "pairs") else "left")
    for row in rows_as_dicts(rows):
        table.add_row(row["image"], str(row["number_socks_seen"]), row["pair_seen"], str(row["pairs"]))
    return table


def print_table(rows, title: str):
    """The pairs table and the odd socks (plain text when not a terminal)."""
    from rich.console import Console

    from ..core.messages import odd_of

    console = Console()
    console.print(pairs_table(rows, title))
    odd = odd_of(rows)
    console.print("odd socks: %s" % (", ".join(odd) if odd else "none"))
