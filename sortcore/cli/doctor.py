"""``sortcore doctor``: is the store sound; if not, a recovered copy and what to do next."""

import sys

import click

from .common import db_option


@click.command()
@db_option
@click.option("--quick", is_flag=True, help="PRAGMA quick_check instead of the full integrity_check.")
@click.option("--recover/--no-recover", default=True, show_default=True,
              help="Write a recovered copy when the store is damaged.")
@click.option("-o", "--out", type=click.Path(dir_okay=False), help="Recovered copy (default: DB.recovered.db).")
def doctor(db_path, quick, recover, out):
    """Check the store's integrity; make a recovered copy of a damaged one."""
    from ..offline import doctor as lib

    problems = lib.check(db_path, quick=quick)
    if not problems:
        click.echo("%s: ok (%s)" % (db_path, "quick_check" if quick else "integrity_check"))
        return
    click.echo("%s is damaged:" % db_path)
    for problem in problems:
        click.echo("  " + problem)
    if recover:
        copy = lib.recover(db_path, out)
        click.echo("recovered copy (%s): %s" % (copy.method, copy.path))
        click.echo("  rows: " + (", ".join("%s %d" % item for item in sorted(copy.rows.items())) or "none"))
        for part in copy.lost:
            click.echo("  lost: " + part)
        click.echo("next:")
        for step in lib.next_steps(db_path, copy.path):
            click.echo("  - " + step)
    sys.exit(1)


commands = [doctor]
