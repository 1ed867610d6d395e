"""``sortcore run``: the appliance in one process on plain Linux (a thin wrapper).

Exit codes: 0 stopped (SIGTERM, Ctrl-C) or the source ended cleanly; 1 an error that
retrying cannot mend (one line); 2 a bad option or setting; 3 the source ended after errors (failures
that were retried, or frames that became dead letters).
"""


import click

from ..core.errors import ConfigError, SortcoreError
from ..classifier.folders import shipped_model
from .common import live_page
from .options import SectionedCommand, settings_options

FINISHED_WITH_ERRORS = 3


@click.command("run", cls=SectionedCommand)
@settings_options("run")
def run(settings):
    """The appliance: camera -> classifier -> engine -> store -> MQTT (with --broker) -> page (--http).

    Runs until SIGTERM or Ctrl-C. A camera that cannot be opened, a broker that is down and a
    full disk are retried with backoff, and the status says degraded and why. A missing file
    or a model that does not load stops at once with one line (exit 1); a bad setting: exit 2. A
    folder or video source stops at its end (with --http, the page stays up until SIGTERM or
    Ctrl-C): exit 0, or 3 if there were errors on the way.
    """
    from ..runtime.appliance import appliance_config, run_appliance

    if not settings["source"]:
        raise click.UsageError("give --source (webcam:0, video:PATH, folder:PATH) or SORTCORE_SOURCE")
    try:
        config = appliance_config(settings, "run", shipped_model())
        with live_page(settings) as listeners:
            from ..camera.annotate import frame_feed  # the page's camera view
            loop = run_appliance(config, listeners, on_frame=frame_feed(listeners), hold=bool(listeners))
    except ConfigError as exc:  # a setting out of range: exit 2, like any bad option
        raise click.UsageError(str(exc))
    except SortcoreError as exc:
        raise click.ClickException(str(exc))
    dead = loop.counters.get("dead_letters", 0)
    click.echo("stopped after %d frames; %d retried errors, %d dead letters%s" % (
        loop.frames, loop.errors, dead, "; last: %s" % loop.last_error if loop.last_error else ""), err=True)
    if loop.state == "finished" and (loop.errors or dead):
        raise click.exceptions.Exit(FINISHED_WITH_ERRORS)


commands = [run]
