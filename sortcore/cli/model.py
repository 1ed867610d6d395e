"""``sortcore train / evaluate / classify / watch``: the sock classifier commands.

Thin: each command calls one library function and turns
:class:`sortcore.errors.SortcoreError` into :class:`click.ClickException`.
MXNet and OpenCV are imported only when a command runs.
"""

import json
import os
import sys

import click

from ..errors import SortcoreError
from ..folders import shipped_model
from .options import settings_options

#: The shipped model: in the installed package, or model/ of a checkout.
DEFAULT_MODEL = shipped_model()


def model_option(func):
    return click.option("--model", "model_dir", type=click.Path(file_okay=False),
                        default=DEFAULT_MODEL, show_default="model/",
                        help="Model folder (<name>-symbol.json, -0000.params, labels.txt, "
                        "prototypes.npy, calibration.json).")(func)


def min_probability_option(func):
    return click.option("--min-probability", type=click.FloatRange(0, 100), default=None,
                        help="Accept a design only at this cosine similarity (percent) or more; "
                        "overrides the calibrated threshold tau of the model folder.")(func)


def cosine_loss_option(func):
    return click.option("--cosine-loss", type=click.FloatRange(0, None), default=0.0,
                        show_default=True, help="Weight of the training-only cosine-classifier "
                        "loss on the embedding (model/README.md: raises argmax right on leave-one-photo-"
                        "out, not the right share at the calibrated threshold; not shipped).")(func)


@click.command()
@click.option("--data", "data_dir", required=True, type=click.Path(exists=True, file_okay=False),
              help="One folder of photos per sock design (folder name = label).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Where to write the model files and its README.md card.")
@click.option("--epochs", type=int, default=30, show_default=True)
@click.option("--size", type=int, default=96, show_default=True, help="Input pixels (square).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--members", type=click.IntRange(1, 8), default=1, show_default=True,
              help="Train an ensemble of this many nets (seeds seed, seed+1, ...) in one graph.")
@cosine_loss_option
@click.option("--cv/--no-cv", default=True, show_default=True,
              help="Also run leave-one-photo-out for the card (one training per photo).")
@click.option("--views", type=int, default=20, show_default=True,
              help="Augmented views per photo when evaluating.")
@click.option("--scores", default=None,
              help="Calibrate from saved leave-one-photo-out score files (a glob of .npz) "
              "instead of running LOPO.")
def train(data_dir, out_dir, epochs, size, seed, members, cosine_loss, cv, views, scores):
    """Train the sock classifier, calibrate its Unknown rule, write its files and card."""
    from ..training.modelcard import build_model
    from ..training.train import TrainOptions
    try:
        options = TrainOptions(size=size, epochs=epochs, seed=seed, members=members,
                               cosine_loss=cosine_loss)
        figures = build_model(data_dir, out_dir, options, cv=cv, views=views, scores=scores)
    except (SortcoreError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc))
    cal = figures["calibration"]
    click.echo("wrote %s: tau %.3f (%s)%s" % (
        out_dir, cal["tau"], cal["calibrated_by"], "" if "coverage" not in cal else
        ", LOPO coverage %.1f %% risk %.1f %%" % (100 * cal["coverage"], 100 * cal["risk"])))


@click.command()
@click.option("--data", "data_dir", required=True, type=click.Path(exists=True, file_okay=False),
              help="One folder of photos per sock design.")
@model_option
@click.option("--views", type=int, default=20, show_default=True,
              help="Augmented views per photo.")
@click.option("--cv/--no-cv", default=False, show_default=True,
              help="Leave-one-photo-out instead: retrains once per photo (minutes).")
@click.option("--epochs", type=int, default=30, show_default=True, help="Epochs per fold (--cv).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--members", type=click.IntRange(1, 8), default=1, show_default=True,
              help="Ensemble size per fold (--cv).")
@cosine_loss_option
def evaluate(data_dir, model_dir, views, cv, epochs, seed, members, cosine_loss):
    """Per-class right/Unknown/wrong on augmented views, or leave-one-photo-out with --cv."""
    from ..training import lopo, train as training
    from ..training.evaluate import evaluate as run_evaluate
    try:
        if cv:
            options = training.TrainOptions(epochs=epochs, seed=seed, members=members,
                                            cosine_loss=cosine_loss)
            summary = lopo.summarise(lopo.cross_validate(data_dir, options, views))
        else:
            result = run_evaluate(data_dir, model_dir, views=views)
    except SortcoreError as exc:
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
    from ..errors import SourceError
    for path in paths:
        if not os.path.isdir(path):
            yield path
            continue
        try:
            yield from FolderSource(path).files
        except SourceError:  # an empty folder; the whole selection is checked by classify
            continue


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@model_option
@min_probability_option
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of results.")
@settings_options("classify")
def classify(paths, model_dir, min_probability, as_json, settings):
    """Label image files (or the images in folders, recursively) with the sock classifier.

    The label is ``Unknown`` when the model is not sure. A file that cannot be read
    is reported on stderr; the others still run and the exit code is 1. A selection
    without any image is an error.
    """
    from ..classifier.model import read_image
    from ..classifier.runtime import load_classifier
    files = list(_image_paths(paths))
    if not files:
        raise click.ClickException("no images in %s" % ", ".join(paths))
    try:
        classifier = load_classifier(model_dir, settings["runtime"], min_probability=min_probability)
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
@click.option("--source", "source_spec", required=True,
              help="folder:PATH[?loop], video:PATH, webcam:0 or deeplens.")
@settings_options("watch")
@click.option("--fps", type=float, default=5.0, show_default=True,
              help="At most this many frames a second (0: unlimited).")
@click.option("--camera", default="camera", show_default=True, help="Camera name in payloads.")
@model_option
@min_probability_option
@click.option("--count", type=int, default=None, help="Stop after N frames.")
@click.option("--topic", default="sockfound", show_default=True)
def watch(source_spec, settings, fps, camera, model_dir, min_probability, count, topic):
    """Classify frames from a camera, video or folder and publish sockfound payloads.

    With --broker (and the same connection options as serve) they go to the broker,
    else to stdout.
    """
    from ..camera.sources import open_source
    from ..classifier.runtime import load_classifier
    from ..runtime.watch import WatchOptions, watch as run_watch
    publisher = None
    try:
        options = WatchOptions(fps=fps, camera=camera, count=count)
        classifier = load_classifier(model_dir, settings["runtime"], min_probability=min_probability)
        if settings["broker"]:
            from ..runtime.config import publisher_factory
            publisher = publisher_factory(settings)()

            def emit(text):
                publisher.publish(topic, text, qos=1)
        else:
            def emit(text):
                click.echo(text)
        with open_source(source_spec) as source:
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
