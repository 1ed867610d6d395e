"""The ``sortcore`` command line: a thin layer over the library."""

import logging

import click

from . import device as _device
from . import model as _model
from . import replay as _replay
from . import service as _service

COMMAND_MODULES = [_replay, _service, _model, _device]


@click.group(context_settings={"auto_envvar_prefix": "SORTCORE", "help_option_names": ["-h", "--help"]})
@click.version_option(package_name="sortcore")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def main(verbose):
    """Count socks and pairs from a noisy sock-classifier stream.

    Every option can also be set as an environment variable
    SORTCORE_<COMMAND>_<OPTION>, e.g. SORTCORE_REPLAY_DB=/var/lib/socks.db.
    """
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(level=max(level, logging.DEBUG), format="%(asctime)s %(levelname)s %(name)s: %(message)s")


for _module in COMMAND_MODULES:
    for _command in _module.commands:
        main.add_command(_command)
