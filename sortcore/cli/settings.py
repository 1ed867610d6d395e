"""``sortcore settings``: the one settings table, as text or as docs/settings.md."""

import click


@click.command("settings")
@click.option("--markdown", is_flag=True, help="Print docs/settings.md (the reference table).")
@click.option("--command", "command", help="Only the settings of this command (e.g. serve, lambda).")
def settings_command(markdown, command):
    """List every setting: its option, environment variable, default and commands."""
    from .. import settings as table

    if markdown:
        click.echo(table.markdown(), nl=False)
        return
    for setting in table.for_command(command) if command else table.SETTINGS:
        names = sorted({setting.envvar(c) for c in setting.commands if not command or c == command})
        default = table.default(setting, command) if command else setting.default
        click.echo("%-18s %-22s %-34s %s" % (setting.name, setting.option, ", ".join(names),
                                             "" if default in (None, "", ()) else default))


commands = [settings_command]
