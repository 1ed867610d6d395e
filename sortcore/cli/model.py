"""``sortcore train / evaluate / classify / watch``: the sock classifier commands.

Thin: each command calls one library function and turns
:class:`sortcore.core.errors.SortcoreError` into :class:`click.ClickException`.
MXNet and OpenCV are imported only when a command runs.
"""

import json
import os
import sys

import click

from ..core.errors import SortcoreError
from ..classifier.folders import shipped_model
from .options import settings_options

#: The shipped model: in the installed package, or model/ of a checkout.
DEFAULT_MODEL = shipped_model()


def model_option(func):
    return click.option("--model", "model_dir", type=click.Path(file_okay=False),
                        default=DEFAULT_MODEL, show_default="model/",
                        help="Model folder (the .onnx net, labels.txt, gallery.npz, "
                        "calibration.json).")(func)


@click.command()
@click.option("--data", "data_dir", required=True, type=click.Path(exists=True, file_okay=False),
              help="One folder of photos per sock design (folder name = label); optionally a "
              "Blank folder of the empty scene.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="The new model folder (written whole or not at all).")
@click.option("--model", "model_dir", type=click.Path(file_okay=False), default=DEFAULT_MODEL,
              show_default="model/", help="The base model whose network is used (never changed).")
def train(data_dir, out_dir, model_dir):
    """Teach the frozen network a folder of designs and calibrate the Unknown rule."""
    from ..training.teach import build_model
    try:
        figures = build_model(data_dir, out_dir, model_dir)
    except (SortcoreError, ValueError) as exc:
        raise click.ClickException(str(exc))
    s = figures["summary"]
    click.echo("wrote %s: tau %.3f margin %.3f floor %.3f; leave-one-photo-out nested "
               "right %.1f %% wrong %.1f %%" % (out_dir, s["tau"], s["margin"], s["floor"],
                                                 100 * s["nested"]["right"],
                                                 100 * s["nested"]["wrong"]))


@click.command()
@click.option("--data", "data_dir", required=True, type=click.Path(exists=True, file_okay=False),
              help="One folder of photos per sock design.")
@model_option
@click.option("--views", type=int, default=20, show_default=True,
              help="Augmented views per photo.")
@click.option("--cv/--no-cv", default=False, show_default=True,
              help="Leave-one-photo-out and leave-one-design-out with the model's network "
              "instead (the data's photos are taught, not the model's gallery).")
def evaluate(data_dir, model_dir, views, cv):
    """Per-class right/Unknown/wrong on augmented views, or leave-one-photo-out with --cv."""
    from ..training.evaluate import evaluate as run_evaluate
    try:
        if cv:
            from ..classifier.backends import load_embedder
            from ..training.teach import cross_validate, load_photos
            summary = cross_validate(load_photos(data_dir), load_embedder(model_dir))[3]
        else:
            result = run_evaluate(data_dir, model_dir, views=views)
    except (SortcoreError, ValueError) as exc:
        raise click.ClickException(str(exc))
    if cv:
        click.echo(json.dumps(summary, indent=2))
        return
    for label, (right, unknown, wrong) in sorted(result.per_class.items()):
        click.echo("%-16s right %4d  Unknown %4d  wrong %4d" % (label, right, unknown, wrong))
    click.echo("overall          right %.1f %%  Unknown %.1f %%  wrong %.1f %%" % (
        100 * result.share(0), 100 * result.share(1), 100 * result.share(2)))


def _image_paths(paths):
    """Files as given; folders walked recursively, in the folder source's order."""
    from ..camera.sources import FolderSource
    from ..core.errors import SourceError
    for path in paths:
        if not os.path.isdir(path):
            yield path
            continue
        try:
            yield from FolderSource(path).files
        except SourceError:  # an empty folder; the whole selection is checked by classify
            continue


def _classifier(settings):
    """The classifier of a command that only classifies (classify, watch): its model and threshold."""
    from ..classifier.backends import load_classifier
    threshold = settings["min_probability"]
    if threshold is not None and not 0 <= threshold <= 100:
        raise click.BadParameter("must be 0-100, got %r" % threshold, param_hint="--min-probability")
    return load_classifier(settings["model"] or DEFAULT_MODEL, settings["runtime"], min_probability=threshold)


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of results.")
@settings_options("classify")
def classify(paths, as_json, settings):
    """Label image files (or the images in folders, recursively) with the sock classifier.

    The label is ``Unknown`` when the model is not sure. A file that cannot be read
    is reported on stderr; the others still run and the exit code is 1. A selection
    without any image is an error.
    """
    from ..classifier.model import read_image
    files = list(_image_paths(paths))
    if not files:
        raise click.ClickException("no images in %s" % ", ".join(paths))
    try:
        classifier = _classifier(settings)
    except SortcoreError as exc:
        raise click.ClickException(str(exc))
    results, failed = [], 0
    for path in files:
        try:
            prediction = classifier.classify(read_image(path))
        except SortcoreError as exc:
            failed += 1
            click.echo("error: %s" % exc, err=True)
            continue
        results.append({"path": path, "image": prediction.label,
                        "probability": prediction.probability})
        if not as_json:
            click.echo("%s\t%s\t%.1f %%" % (path, prediction.label, prediction.probability))
    if as_json:
        click.echo(json.dumps(results, indent=2))
    if failed:
        sys.exit(1)


@click.command()
@settings_options("watch")
@click.option("--count", type=int, default=None, help="Stop after N frames.")
@click.option("--topic", default="sockfound", show_default=True)
def watch(settings, count, topic):
    """Classify frames from a camera, video or folder and publish sockfound payloads.

    With --broker (and the same connection options as serve) they go to the broker,
    else to stdout.
    """
    from ..camera.sources import open_source
    from ..runtime.config import camera_name
    from ..runtime.watch import WatchOptions, watch as run_watch
    if not settings["source"]:
        raise click.UsageError("give --source (webcam:0, video:PATH, folder:PATH[?loop]) or SORTCORE_SOURCE")
    publisher = None
    try:
        fps = settings["fps"]
        options = WatchOptions(fps=fps, camera=camera_name(settings, os.environ), count=count,
                               new_designs=settings["new_designs"])
        classifier = _classifier(settings)
        if settings["broker"]:
            from ..runtime.config import publisher_factory
            publisher = publisher_factory(settings)()

            def emit(text):
                publisher.publish(topic, text, qos=1)
        else:
            def emit(text):
                click.echo(text)
        with open_source(settings["source"], fps) as source:
            sent = run_watch(source, classifier, emit, options)
    except SortcoreError as exc:
        raise click.ClickException(str(exc))
    finally:
        if publisher is not None:
            publisher.close()
    click.echo("watch: %d frames classified" % sent, err=True)


@click.command()
@click.option("--design", default=None, help="The design to add (or to give more examples of).")
@click.option("--remove", "remove_name", default=None, help="Instead: the design to take out.")
@click.option("--source", "source_spec", default=None,
              help="Photos or frames of it: folder:PATH, video:PATH (a short clip), webcam:0.")
@click.option("--model", "model_dir", type=click.Path(file_okay=False), default=DEFAULT_MODEL,
              show_default="model/", help="The base model (never changed).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="The new model folder.")
def enroll(design, remove_name, source_spec, model_dir, out_dir):
    """Teach a model a new design (or more of one, or --remove one) into a new model folder."""
    from ..training import enroll as enrolment
    if bool(design) == bool(remove_name):
        raise click.UsageError("give either --design NAME --source SPEC or --remove NAME")
    if design and not source_spec:
        raise click.UsageError("--design needs --source")
    try:
        if remove_name:
            labels = enrolment.remove(model_dir, out_dir, remove_name)
        else:
            frames = enrolment.frames_of(source_spec)
            labels = enrolment.enroll(model_dir, out_dir, design, frames)
    except SortcoreError as exc:
        raise click.ClickException(str(exc))
    click.echo("wrote %s: %s" % (out_dir, ", ".join(labels)))


commands = [train, evaluate, classify, watch, enroll]
