"""Click options made from the settings table (:mod:`sortcore.core.settings`).

``@settings_options("serve")`` adds every setting ``serve`` takes, each with its
environment variable, plus ``--config FILE``, and hands the command one
``settings`` dict (name -> value). Precedence: command line > environment >
config file > default (click's own order: value, envvar, default_map, default).
"""

import configparser
import functools
import os

import click

from ..core import settings as table
from ..core.errors import SortcoreError

_TYPES = {"int": int, "float": float, "str": str}


def default_db() -> str:
    """``$XDG_DATA_HOME/sortcore/sortcore.db`` (``~/.local/share/...``)."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "sortcore", "sortcore.db")


def _split_list(ctx, param, value):
    if value is None:
        return None
    return tuple(part.strip() for item in value for part in item.split(",") if part.strip())


def click_option(setting: table.Setting, command: str):
    default = table.default(setting, command)
    kwargs = dict(envvar=setting.envvar(command), help=setting.help_for(command), show_envvar=True)
    name = setting.option
    if setting.kind == "bool":
        name = "%s/--no-%s" % (setting.option, setting.option[2:])
        kwargs.update(default=default)
    elif setting.kind == "list":
        kwargs.update(multiple=True, default=list(default or ()), callback=_split_list)
    elif setting.kind == "choice":
        kwargs.update(type=click.Choice(setting.choices), default=default)
    elif setting.kind == "path":
        kwargs.update(type=click.Path(dir_okay=setting.name in ("model", "user_model")), default=default)
    else:
        kwargs.update(type=_TYPES[setting.kind], default=default)
    if setting.name == "db":
        kwargs.update(default=default or default_db, show_default="$XDG_DATA_HOME/sortcore/sortcore.db")
    elif default not in (None, "", ()):
        kwargs["show_default"] = True
    return click.option(name, setting.name, **kwargs)


def _load_config(ctx, param, path):
    """Eager ``--config``: the file's ``[sortcore]`` and ``[<command>]`` sections become defaults."""
    if not path:
        return path
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, encoding="utf-8") as f:
            parser.read_file(f)
    except (OSError, UnicodeDecodeError, configparser.Error) as exc:
        raise click.BadParameter("cannot read %s: %s" % (path, exc), param=param)
    values = {}
    for section in ("sortcore", ctx.command.name):
        if parser.has_section(section):
            try:
                values.update(table.from_mapping(ctx.command.name, parser.items(section), path))
            except SortcoreError as exc:
                raise click.BadParameter(str(exc), param=param)
    values = {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}
    ctx.default_map = dict(ctx.default_map or {}, **values)
    return path


def settings_options(command: str):
    """Decorate a click command with its settings; it receives ``settings`` (a dict)."""
    chosen = table.for_command(command)

    def decorate(func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            values = {s.name: kwargs.pop(s.name) for s in chosen}
            values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
            return func(*args, settings=values, **kwargs)

        for setting in reversed(chosen):
            wrapper = click_option(setting, command)(wrapper)
        return click.option("--config", type=click.Path(exists=True, dir_okay=False), is_eager=True,
                            expose_value=False, callback=_load_config,
                            help="INI file whose [sortcore] or [%s] section sets any option "
                                 "(keys as the setting names)." % command)(wrapper)

    return decorate


#: The headings of a command's ``--help``, by the settings' options group; the camera's
#: settings split into where frames come from and what classifies them.
SECTIONS = {"device": "Source", "engine": "Engine", "store": "Store", "connect": "Broker",
            "core": "Broker", "web": "Page", "serve": "Service"}
SECTION_OF = {"model": "Classifier", "runtime": "Classifier", "topic_prefix": "Broker",
              "publish_frames": "Broker"}
ORDER = ("Source", "Classifier", "Engine", "Store", "Service", "Broker", "Page")


class SectionedCommand(click.Command):
    """A command whose ``--help`` lists its settings under headings (:data:`SECTIONS`)."""

    def format_options(self, ctx, formatter):
        sections = {}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is None:
                continue
            setting = table.BY_NAME.get(param.name)
            title = "Other options" if setting is None else \
                SECTION_OF.get(setting.name) or SECTIONS.get(setting.group, "Other options")
            sections.setdefault(title, []).append(record)
        for title in ORDER + ("Other options",):
            if title in sections:
                with formatter.section(title):
                    formatter.write_dl(sections[title])
