"""``sortcore export-onnx``: write the model folder's ``<name>.onnx`` (docs/onnx.md).

Thin: calls :func:`sortcore.training.export_onnx.export_onnx`, which exports in
this Python when it has mxnet and onnx<1.15, else in ``.venv-export``
(scripts/export-env.sh).
"""

import click

from .model import model_option


@click.command("export-onnx")
@model_option
@click.option("--name", default=None, help="Model name when the folder holds several.")
def export_onnx(model_dir, name):
    """Export the MXNet model to <name>.onnx beside it, for ONNX Runtime (--runtime onnx)."""
    from ..training.export_onnx import export_onnx as run_export
    click.echo("wrote %s" % run_export(model_dir, name))


commands = [export_onnx]
