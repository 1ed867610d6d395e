"""The ``sortcore`` command line: a thin layer over the library."""

import logging

import click

from . import device as _device
from . import model as _model
from . import replay as _replay
from . import run as _run
from . import service as _service
from . import settings as _settings

COMMAND_MODULES = [_replay, _service, _run, _model, _device, _settings]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="sortcore")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def main(verbose):
    """Count socks and pairs from a noisy sock-classifier stream.

    The settings (store, engine, broker, camera, page) can also come from the
    environment as SORTCORE_<SETTING>, e.g. SORTCORE_DB=/var/lib/socks.db, or
    from --config FILE; `sortcore settings` lists them all.
    """
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(level=max(level, logging.DEBUG), format="%(asctime)s %(levelname)s %(name)s: %(message)s")


for _module in COMMAND_MODULES:
    for _command in _module.commands:
        main.add_command(_command)
