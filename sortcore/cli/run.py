"""``sortcore run``: the appliance in one process on plain Linux (a thin wrapper)."""

import os

import click

from ..errors import SortcoreError
from .common import live_page
from .options import settings_options


def _shipped_model() -> str:
    from ..folders import shipped_model
    return shipped_model()


@click.command("run")
@settings_options("run")
def run(settings):
    """The appliance: camera -> classifier -> engine -> store -> MQTT (with --broker) -> page (--http).

    Runs until SIGTERM or Ctrl-C; camera, model, store and broker faults are
    retried with backoff, and the status says why. A folder or video source
    stops at its end.
    """
    from ..runtime.appliance import run_appliance
    from ..runtime.config import camera_name

    if not settings["source"]:
        raise click.UsageError("give --source (webcam:0, video:PATH, folder:PATH) or SORTCORE_SOURCE")
    values = dict(settings, model=settings["model"] or _shipped_model(),
                  camera=camera_name(settings, os.environ), db=settings["db"])
    try:
        with live_page(settings) as listeners:
            from ..camera.annotate import frame_feed  # the page's camera view
            loop = run_appliance(values, listeners, on_frame=frame_feed(listeners))
    except SortcoreError as exc:
        raise click.ClickException(str(exc))
    click.echo("stopped after %d frames; %s" % (loop.frames, loop.last_error or "no errors"), err=True)


commands = [run]
