"""``sortcore serve`` and ``sortcore demo``: thin wrappers over sortcore.runtime.service and
sortcore.devtools.demo. Their options come from the settings table (sortcore.core.settings).
"""

import json

import click

from ..core.errors import SortcoreError
from .common import live_page, open_store, pairs_table
from .options import SectionedCommand, settings_options


@click.command(cls=SectionedCommand)
@settings_options("serve")
def serve(settings):
    """Count socks from 'sockfound' frames and publish results on 'sockpairs'.

    Runs until SIGTERM or Ctrl-C. Results are kept in the store until the
    broker has them, so broker outages and restarts lose nothing.
    """
    from ..core.frames import label_set, read_labels
    from ..runtime import config as build
    from ..runtime.service import ServeOptions, serve as run_service

    try:
        options = ServeOptions(
            broker=settings["broker"], connect=build.connect_options(settings), core=build.core_options(settings),
            camera_default=settings["camera_default"], batch=settings["batch"], max_future=settings["max_future"],
            labels=label_set(read_labels(settings["labels"])) if settings["labels"] else None)
        config = build.engine_config(settings)
    except SortcoreError as exc:
        raise click.BadParameter(str(exc))
    store = open_store(settings["db"], owner="sortcore serve")
    try:
        with live_page(settings) as listeners:
            run_service(store, config, options, listeners=listeners)
    except SortcoreError as exc:
        raise click.ClickException(str(exc))
    finally:
        store.close()


@click.command()
@click.option("--log", "log_path", type=click.Path(exists=True, dir_okay=False),
              help="Play this recorded '%U %p' frame log (default: a freshly simulated session).")
@click.option("--speed", type=float, default=8.0, show_default=True, help="Play this many times faster than real time.")
@click.option("--socks", type=int, default=20, show_default=True, help="Socks in the simulated session.")
@click.option("--seed", type=int, help="Seed of the simulated session.")
@click.option("--json", "as_json", is_flag=True, help="Print the final result as JSON instead of tables.")
@settings_options("demo")
def demo(log_path, speed, socks, seed, as_json, settings):
    """Run broker, service and a simulated camera here; watch socks get paired.

    Needs only mosquitto (apt-get install mosquitto). Without --db the store is
    temporary and removed at the end.
    """
    from ..devtools.demo import DemoOptions, run_demo

    from ..runtime.config import engine_config

    db = settings["db"] if click.get_current_context().get_parameter_source("db").name != "DEFAULT" else None
    try:
        options = DemoOptions(log=log_path, speed=speed, socks=socks, seed=seed, db=db)
        config = engine_config(settings)
        with live_page(settings) as listeners:
            if as_json:
                click.echo(json.dumps(run_demo(options, config, listeners=listeners), indent=2))
                return
            result = _demo_live(options, config, listeners)
    except SortcoreError as exc:
        raise click.ClickException(str(exc))
    _print_final(result)


def _demo_live(options, config, listeners):
    from rich.live import Live

    from ..devtools.demo import run_demo

    click.echo("Starting mosquitto, the service and a simulated camera (%gx real time)..." % options.speed)
    with Live(pairs_table([], "sockpairs: waiting for the first sock"), refresh_per_second=8) as live:
        def on_sock(message, rows):
            live.update(pairs_table(rows, "sockpairs: sock %d (%s) confirmed" % (message["sighting"], message["image"])))

        return run_demo(options, config, on_sock=on_sock, listeners=listeners)


def _print_final(result):
    from rich.console import Console

    console = Console()
    console.print(pairs_table(result["socks"], "Final pairs, session %d" % result["session"]))
    odd = ", ".join(result["odd"]) or "none"
    console.print("Odd socks: %s.  %d frames, %d dead letters, %d results published in %.1f s."
                  % (odd, result["frames"], result["dead_letters"], result["messages"], result["seconds"]))
    if "correct" in result:
        console.print("Matches the simulated truth: %s" % ("yes" if result["correct"] else "NO"))
        counted = {row["image"]: row["number_socks_seen"] for row in result["socks"]}
        for image in sorted(set(counted) | set(result["truth"])):
            if counted.get(image, 0) != result["truth"].get(image, 0):
                console.print("  %s: %d counted, %d shown (ghost frames can, rarely, pass for a sock)"
                              % (image, counted.get(image, 0), result["truth"].get(image, 0)))
    console.print("SQLite store: %s" % (result["db"] or "temporary, removed (give --db FILE to keep it)"))


commands = [serve, demo]
