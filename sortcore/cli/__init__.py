"""The ``sortcore`` command line: a thin layer over the library."""

import sqlite3

import click

from ..core.errors import SortcoreError
from . import device as _device
from . import count as _count
from . import doctor as _doctor
from . import model as _model
from . import replay as _replay
from . import run as _run
from . import service as _service
from . import settings as _settings
from . import store as _store

COMMAND_MODULES = [_replay, _store, _service, _run, _model, _count, _device, _settings, _doctor]


def one_line(exc: BaseException) -> str:
    """What an error the CLI can meet means, in one line."""
    if isinstance(exc, OSError) and exc.strerror:
        where = exc.filename if exc.filename is not None else ""
        return "%s%s" % ("%s: " % where if where else "", exc.strerror)
    if isinstance(exc, sqlite3.Error):
        return "SQLite: %s" % exc
    return " ".join(str(exc).split()) or type(exc).__name__


class Main(click.Group):
    """The group that turns every failure into one clear line and exit 1 (``--debug``: the traceback)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (SortcoreError, OSError, sqlite3.Error) as exc:
            if ctx.params.get("debug"):
                raise
            raise click.ClickException(one_line(exc)) from exc
        except click.ClickException as exc:  # a command turned an error into a line itself
            cause = exc.__cause__ or exc.__context__
            if ctx.params.get("debug") and isinstance(cause, Exception):
                raise cause
            raise


@click.group(cls=Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="sortcore")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.option("--debug", is_flag=True, help="Show the traceback of an error instead of one line.")
def main(verbose, debug):
    """Count socks and pairs from a noisy sock-classifier stream.

    The settings (store, engine, broker, camera, page) can also come from the
    environment as SORTCORE_<SETTING>, e.g. SORTCORE_DB=/var/lib/socks.db, or
    from --config FILE; `sortcore settings` lists them all.
    """
    import logging

    from ..runtime.systemd import log_format

    handler = logging.StreamHandler()
    handler.setFormatter(log_format(handler.stream))  # under journald: no timestamp, a <priority>
    logging.basicConfig(level=max(logging.WARNING - 10 * verbose, logging.DEBUG), handlers=[handler])


for _module in COMMAND_MODULES:
    for _command in _module.commands:
        main.add_command(_command)
