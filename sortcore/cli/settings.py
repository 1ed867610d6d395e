"""``sortcore settings``: the one settings table, as text or as docs/settings.md."""

import click


@click.command("settings")
@click.option("--markdown", is_flag=True, help="Print docs/settings.md (the reference table).")
@click.option("--command", "command", help="Only the settings of this command (e.g. serve, lambda).")
def settings_command(markdown, command):
    """List every setting: its option, environment variable, default and commands."""
    from ..core import settings as table

    if markdown:
        click.echo(table.markdown(), nl=False)
        return
    for setting in table.for_command(command) if command else table.SETTINGS:
        names = sorted({setting.envvar(c) for c in setting.commands if not command or c == command})
        default = table.default(setting, command) if command else setting.default
        click.echo("%-18s %-22s %-34s %s" % (setting.name, setting.option, ", ".join(names),
                                             "" if default in (None, "", ()) else default))


@click.command("token")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="The token file to write (for --http-token-file), mode 0600.")
@click.option("--force", is_flag=True, help="Replace the token of an existing file.")
def token_command(out, force):
    """Write a new random reset token for the status page (256 bits, URL-safe)."""
    from ..core.errors import SortcoreError
    from ..runtime.secrets_file import write_token

    try:
        write_token(out, force=force)
    except SortcoreError as exc:
        raise click.ClickException(str(exc))
    click.echo("wrote a new token to %s; give it to the page as --http-token-file %s" % (out, out), err=True)


commands = [settings_command, token_command]
