"""Commands over recorded frame logs: replay, simulate, timeline."""

import json
import sys

import click

from ..core import settings as table
from ..core.errors import BadLog, SortcoreError
from ..core.frames import Frame, label_set, read_labels
from ..offline.logfiles import open_log, read_frames
from ..offline.replay import replay as run_replay
from ..runtime.config import engine_config
from .common import engine_options, open_store, print_table
from .options import click_option, settings_options


@click.command()
@click.argument("logs", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@settings_options("replay")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
@click.option("--strict", is_flag=True, help="Exit 1 when any line was a dead letter.")
@click.option("--commit-every", type=click.IntRange(1), default=5000, show_default=True,
              help="Lines per transaction (a killed replay resumes from the last one).")
def replay(logs, settings, as_json, strict, commit_every):
    """Replay recorded frame LOGS (- for stdin) in event time into a new session.

    Formats are detected per file: '%U %p' lines, mosquitto_sub -F '%J'
    records, or bare payloads (with --fps). Bad lines become dead letters with
    their line number and reason. A replay that was killed resumes when the
    same command runs again.
    """
    fps, db_path = settings["fps"], settings["db"]
    if fps is not None and fps <= 0:
        raise click.BadParameter("must be positive", param_hint="--fps")
    try:
        config = engine_config(settings)
        labels = label_set(read_labels(settings["labels"], BadLog)) if settings["labels"] else None
    except SortcoreError as exc:
        raise click.BadParameter(str(exc))
    store = open_store(db_path)
    progress = None
    if sys.stderr.isatty():  # tqdm only for a person watching (it costs start-up time)
        from tqdm import tqdm

        bar = tqdm(unit=" lines", file=sys.stderr, mininterval=0.5)
        progress = bar.update
    try:
        result = run_replay(store, list(logs), config, fps=fps, commit_every=commit_every,
                            progress=progress, labels=labels)
    except SortcoreError as exc:
        raise click.ClickException(str(exc))
    finally:
        if progress:
            bar.close()
    if as_json:
        click.echo(json.dumps(result.as_json()))
    else:
        print_table(result.rows, "session %d: %s, %d frames" % (result.session, result.mode, result.frames))
    if result.dead_letters:
        click.echo("%d dead letter(s): see 'sqlite-utils rows %s dead_letters'" % (result.dead_letters, db_path),
                   err=True)
        if strict:
            sys.exit(1)


@click.command()
@click.option("-o", "--out", type=click.Path(dir_okay=False), required=True, help="Log file to write.")
@click.option("--truth", type=click.Path(dir_okay=False), help="Truth JSON (default: OUT with .truth.json).")
@click.option("--designs", help="Comma-separated designs (default: the seven sock labels).")
@click.option("--socks", type=click.IntRange(0), default=20, show_default=True)
@click.option("--fps", type=click.FloatRange(0.1, 1000), default=3.5, show_default=True)
@click.option("--ghost-rate", type=click.FloatRange(0, 0.5), default=0.06, show_default=True,
              help="Share of frames that are ghosts of another design.")
@click.option("--wall", type=(float, float), default=(1.8, 4.0), show_default=True,
              help="Min and max seconds of wall between socks.")
@click.option("--seed", type=int, help="Random seed for a reproducible log.")
@click.option("--start", type=float, help="Unix time of the first frame (default: now).")
def simulate(out, truth, designs, socks, fps, ghost_rate, wall, seed, start):
    """Write a realistic simulated frame log ('%U %p' lines) and its truth."""
    from ..offline.simulate import simulate as run_simulate

    if wall[0] > wall[1] or wall[0] < 0:
        raise click.BadParameter("needs 0 <= MIN <= MAX", param_hint="--wall")
    names = [d.strip() for d in designs.split(",") if d.strip()] if designs else None
    lines, facts = run_simulate(names, socks, fps, ghost_rate, wall=wall, seed=seed, start=start)
    with open(out, "w") as f:
        f.write("\n".join(lines) + ("\n" if lines else ""))
    truth = truth or (out[:-4] if out.endswith(".log") else out) + ".truth.json"
    with open(truth, "w") as f:
        json.dump(facts, f, indent=1)
    click.echo("wrote %d frames of %d socks to %s, truth to %s" % (len(lines), socks, out, truth))


@click.command()
@click.argument("log", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.option("-o", "--out", type=click.Path(dir_okay=False), default="timeline.png", show_default=True)
@engine_options
@click_option(table.BY_NAME["fps"], "replay")
def timeline(log, out, config, fps):
    """Draw LOG's frames per design over time, ghosts and confirmed socks."""
    from ..devtools.timeline import plot_timeline

    try:
        with open_log(log) as stream:
            frames = [item for _, item in read_frames(stream, log, fps=fps) if isinstance(item, Frame)]
        socks = plot_timeline(frames, out, config, title=log)
    except (SortcoreError, ValueError) as exc:
        raise click.ClickException(str(exc))
    click.echo("wrote %s (%d frames, %d socks)" % (out, len(frames), socks))


commands = [replay, simulate, timeline]
