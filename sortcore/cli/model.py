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

#: The shipped model, next to the package in a source checkout.
DEFAULT_MODEL = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "model")


def model_option(func):
    return click.option("--model", "model_dir", type=click.Path(file_okay=False),
                        default=DEFAULT_MODEL, show_default="model/",
                        help="Folder with <name>-symbol.json, <name>-0000.params, labels.txt.")(func)


@click.command()
@click.option("--data", "data_dir", required=True, type=click.Path(exists=True, file_okay=False),
              help="One folder of photos per sock design (folder name = label).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Where to write the model files and its README.md card.")
@click.option("--epochs", type=int, default=30, show_default=True)
@click.option("--size", type=int, default=96, show_default=True, help="Input pixels (square).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--cv/--no-cv", default=True, show_default=True,
              help="Also run leave-one-photo-out for the card (one training per photo).")
@click.option("--views", type=int, default=20, show_default=True,
              help="Augmented views per photo when evaluating.")
def train(data_dir, out_dir, epochs, size, seed, cv, views):
    """Train the sock classifier and write its files and model card."""
    from ..training.modelcard import build_model
    from ..training.train import TrainOptions
    try:
        options = TrainOptions(size=size, epochs=epochs, seed=seed)
        figures = build_model(data_dir, out_dir, options, cv=cv, views=views)
    except SortcoreError as exc:
        raise click.ClickException(str(exc))
    click.echo("wrote %s: accuracy %.1f %% on augmented views%s" % (
        out_dir, 100.0 * figures["accuracy"],
        "" if not figures["cross_validation"] else ", leave-one-photo-out %.1f %%" % (
            100.0 * figures["cross_validation"]["view_accuracy"])))


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
def evaluate(data_dir, model_dir, views, cv, epochs, seed):
    """Per-class accuracy on augmented views, or leave-one-photo-out with --cv."""
    from ..training import train as training
    try:
        if cv:
            result = training.cross_validate(data_dir, views=views, epochs=epochs, seed=seed)
        else:
            result = training.evaluate(data_dir, model_dir, views=views)
    except SortcoreError as exc:
        raise click.ClickException(str(exc))
    if cv:
        for fold in result.folds:
            click.echo("%-40s %-12s %3d/%d views  majority %s%s" % (
                fold.path, fold.label, fold.correct, fold.views, fold.majority,
                "" if fold.ok else "  WRONG"))
        click.echo("leave-one-photo-out: %.1f %% of views, %d/%d photos right" % (
            100.0 * result.view_accuracy, result.photos_right, len(result.folds)))
    else:
        for label, (correct, total) in sorted(result.per_class.items()):
            click.echo("%-16s %4d/%-4d %6.1f %%" % (label, correct, total, 100.0 * correct / total))
        click.echo("overall          %.1f %%" % (100.0 * result.accuracy))


def _image_paths(paths):
    from ..training.train import IMAGE_EXTENSIONS
    for path in paths:
        if os.path.isdir(path):
            for name in sorted(os.listdir(path)):
                full = os.path.join(path, name)
                if os.path.isfile(full) and name.lower().endswith(IMAGE_EXTENSIONS):
                    yield full
        else:
            yield path


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@model_option
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of results.")
def classify(paths, model_dir, as_json):
    """Label image files (or the images in folders) with the sock classifier.

    A file that cannot be read is reported on stderr; the others still run
    and the exit code is 1.
    """
    from ..classifier.model import load_model, read_image
    try:
        classifier = load_model(model_dir)
    except SortcoreError as exc:
        raise click.ClickException(str(exc))
    results, failed = [], 0
    for path in _image_paths(paths):
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
@click.option("--broker", default=None,
              help="MQTT URL (mqtt://host:1883); without it, payloads go to stdout.")
@click.option("--fps", type=float, default=5.0, show_default=True,
              help="At most this many frames a second (0: unlimited).")
@click.option("--camera", default="camera", show_default=True, help="Camera name in payloads.")
@model_option
@click.option("--count", type=int, default=None, help="Stop after N frames.")
@click.option("--topic", default="sockfound", show_default=True)
def watch(source_spec, broker, fps, camera, model_dir, count, topic):
    """Classify frames from a camera, video or folder and publish sockfound payloads."""
    from ..classifier.model import load_model
    from ..camera.sources import open_source
    from ..runtime.watch import WatchOptions, watch as run_watch
    publisher = None
    try:
        options = WatchOptions(fps=fps, camera=camera, count=count)
        classifier = load_model(model_dir)
        if broker:
            from ..adapters.mqtt import connect_publisher
            publisher = connect_publisher(broker)

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


commands = [train, evaluate, classify, watch]
