"""``sortcore serve`` and ``sortcore demo``: thin wrappers over sortcore.runtime.service and sortcore.devtools.demo.

Option precedence: command line > environment (SORTCORE_SERVE_<OPTION>) >
config file (``--config``, section ``[serve]``) > default.
"""

import configparser
import json

import click

from ..errors import SortcoreError
from .common import db_option, engine_options, open_store, pairs_table


def _load_config(ctx, param, path):
    """Eager ``--config`` callback: the file's ``[serve]`` section becomes click's default_map."""
    if not path:
        return path
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, encoding="utf-8") as f:
            parser.read_file(f)
    except (OSError, configparser.Error) as exc:
        raise click.BadParameter("cannot read %s: %s" % (path, exc), param=param)
    section = ctx.command.name
    if not parser.has_section(section):
        return path
    names = {}
    for p in ctx.command.params:
        for opt in p.opts:
            names[opt.lstrip("-").replace("-", "_")] = p
    values = {}
    for key, value in parser.items(section):
        p = names.get(key.replace("-", "_"))
        if p is None or p.name == "config":
            raise click.BadParameter("%s: unknown key %r in [%s]" % (path, key, section), param=param)
        values[p.name] = [v.strip() for v in value.split(",") if v.strip()] if p.multiple else value
    ctx.default_map = dict(ctx.default_map or {}, **values)
    return path


def config_option(func):
    return click.option(
        "--config", type=click.Path(exists=True, dir_okay=False), is_eager=True, expose_value=False,
        callback=_load_config, help="INI file whose [serve] section sets any option (keys as the long options).",
    )(func)


@click.command()
@config_option
@click.option("--broker", default="mqtt://127.0.0.1:1883", show_default=True,
              help="mqtt://HOST:PORT or mqtts://HOST:PORT (TLS).")
@click.option("--username", help="Broker user name.")
@click.option("--password-file", type=click.Path(exists=True, dir_okay=False),
              help="File whose first line is the broker password (never give it on the command line).")
@click.option("--tls-ca", type=click.Path(exists=True, dir_okay=False), help="CA certificate that signed the broker's.")
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False), help="Client certificate (with --tls-key).")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False), help="Client certificate's key.")
@click.option("--client-id", default="sortcore-serve", show_default=True,
              help="MQTT client id; fixed, so the broker keeps our session and queued frames.")
@click.option("--camera-default", default="", help="Camera name for frames on 'sockfound' without one.")
@click.option("--batch", type=int, default=50, show_default=True, help="Frames committed together at most.")
@click.option("--status-interval", type=float, default=5.0, show_default=True,
              help="Seconds between status updates while counters change.")
@db_option
@engine_options
def serve(broker, username, password_file, tls_ca, tls_cert, tls_key, client_id, camera_default, batch,
          status_interval, db_path, config):
    """Count socks from 'sockfound' frames and publish results on 'sockpairs'.

    Runs until SIGTERM or Ctrl-C. Results are kept in the store until the
    broker has them, so broker outages and restarts lose nothing.
    """
    from ..runtime.service import ServeOptions, serve as run_service

    password = None
    if password_file:
        with open(password_file, encoding="utf-8") as f:
            password = f.readline().rstrip("\r\n")
    try:
        options = ServeOptions(broker=broker, username=username, password=password, tls_ca=tls_ca,
                               tls_cert=tls_cert, tls_key=tls_key, client_id=client_id,
                               camera_default=camera_default, batch=batch, status_interval=status_interval)
    except SortcoreError as exc:
        raise click.BadParameter(str(exc))
    store = open_store(db_path)
    try:
        run_service(store, config, options)
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
@click.option("--db", "db_path", type=click.Path(dir_okay=False), help="SQLite file (default: a new temporary one).")
@click.option("--json", "as_json", is_flag=True, help="Print the final result as JSON instead of tables.")
@engine_options
def demo(log_path, speed, socks, seed, db_path, as_json, config):
    """Run broker, service and a simulated camera here; watch socks get paired.

    Needs only mosquitto (apt-get install mosquitto).
    """
    from ..devtools.demo import DemoOptions, run_demo

    try:
        options = DemoOptions(log=log_path, speed=speed, socks=socks, seed=seed, db=db_path)
        if as_json:
            result = run_demo(options, config)
            click.echo(json.dumps(result, indent=2))
            return
        result = _demo_live(options, config)
    except SortcoreError as exc:
        raise click.ClickException(str(exc))
    _print_final(result)


def _demo_live(options, config):
    from rich.live import Live

    from ..devtools.demo import run_demo

    click.echo("Starting mosquitto, the service and a simulated camera (%gx real time)..." % options.speed)
    with Live(pairs_table([], "sockpairs: waiting for the first sock"), refresh_per_second=8) as live:
        def on_sock(message, rows):
            live.update(pairs_table(rows, "sockpairs: sock %d (%s) confirmed" % (message["sighting"], message["image"])))

        return run_demo(options, config, on_sock=on_sock)


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
    console.print("SQLite store: %s" % result["db"])


commands = [serve, demo]
