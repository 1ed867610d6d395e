"""Commands over the store: pairs, sessions (read-only) and reset."""

import json

import click

from ..core.messages import odd_of
from .common import db_option, engine_options, open_store, print_table


@click.command()
@db_option
@click.option("--session", type=int, help="Session id (default: the latest).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def pairs(db_path, session, as_json):
    """Show the pairs table of the current (or a given) session."""
    store = open_store(db_path, readonly=True)
    row = store.session(session)
    if row is None:
        raise click.ClickException("no such session" if session else "no session yet: replay or serve first")
    from ..store.designstore import DesignStore
    from ..core.messages import rows_as_dicts
    rows = rows_as_dicts(store.pairs(row["id"]), DesignStore(store).names(row["id"]))
    if as_json:
        click.echo(json.dumps({"session": row["id"], "mode": row["mode"], "socks": rows, "odd": odd_of(rows),
                               "unknown": store.unknown(row["id"])}))
    else:
        print_table(rows, "session %d (%s, %s)" % (row["id"], row["mode"], row["status"]))


@click.command()
@db_option
@engine_options
def reset(db_path, config):
    """End the current session and start a new, empty one.

    For a running service, publish {"cmd": "reset"} on sockpairs/control
    instead: the service keeps its own session until it restarts.
    """
    store = open_store(db_path)
    session = store.new_session(config.mode, config.to_dict(), "live")
    click.echo("started session %d" % session)


@click.command()
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def sessions(db_path, as_json):
    """List sorting sessions with their socks and dead letters."""
    rows = open_store(db_path, readonly=True).sessions()
    if as_json:
        click.echo(json.dumps(rows))
        return
    for row in rows:
        click.echo("%(id)5d  %(mode)-9s %(status)-5s frames=%(frames)-7d socks=%(socks)-5d "
                   "dead_letters=%(dead_letters)d" % row)


commands = [pairs, reset, sessions]
