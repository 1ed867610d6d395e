"""``sortcore count``: a video, a folder, a webcam or the DeepLens counted offline in one command."""

import json
import sys

import click

from ..core.errors import SortcoreError
from .common import open_store
from .model import DEFAULT_MODEL
from .options import settings_options
from .replay import print_table


class _Bar(object):
    """tqdm on stderr for a person watching (total set once the source knows it)."""

    def __init__(self):
        from tqdm import tqdm
        self.bar = tqdm(unit=" frames", file=sys.stderr, mininterval=0.5)

    def set_total(self, total):
        self.bar.total = total
        self.bar.refresh()

    def __call__(self, n):
        self.bar.update(n)


def _annotated(path):
    """Where --annotate writes (None without it), said before counting when it is not ``path``."""
    if not path:
        return None
    from ..camera.videoout import choose
    video = choose(path)
    if video.asked:
        click.echo("annotate: this OpenCV has no H.264 encoder; writing %s (%s) instead of %s"
                   % (video.path, video.name, video.asked), err=True)
    return video


@click.command("count")
@click.argument("source")
@settings_options("count")
@click.option("--json", "as_json", is_flag=True, help="Print replay --json's object instead of a table.")
@click.option("--annotate", type=click.Path(dir_okay=False),
              help="Write the frames with their label, probability and confirmed socks to this "
              ".mp4 (H.264) or .webm (VP8) video; an .mp4 becomes .webm where OpenCV has no H.264.")
def count(source, settings, as_json, annotate):
    """Count the socks in SOURCE (video:PATH, folder:PATH, webcam:N, deeplens) into a new session.

    Frames are classified, de-ghosted and stored; a video runs on its own timestamps
    as fast as the CPU allows, a folder at --fps.
    """
    from ..offline.count import count as run_count
    from ..classifier.backends import load_classifier
    from ..runtime.config import engine_config

    store = open_store(settings["db"])
    bar = _Bar() if sys.stderr.isatty() else None
    try:
        config = engine_config(settings)
        video = _annotated(annotate)
        classifier = load_classifier(settings["model"] or DEFAULT_MODEL, settings["runtime"])
        result = run_count(source, classifier, store, config, fps=settings["fps"],
                           annotate=video and video.path, progress=bar, new_designs=settings["new_designs"])
    except SortcoreError as exc:
        raise click.ClickException(str(exc))
    finally:
        if bar is not None:
            bar.bar.close()
    if video:
        click.echo("annotated video: %s (%s)" % (video.path, video.name), err=True)
    if as_json:
        click.echo(json.dumps(result.as_json()))
    else:
        print_table(result.rows, "session %d: %s, %d frames, %d unrecognised" % (
            result.session, result.mode, result.frames, result.unknown))


commands = [count]
