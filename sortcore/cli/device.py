"""Commands for the camera: package-lambda (the Greengrass v1 zip), package-component (v2),
export-mxnet (the network as MXNet files, for the DeepLens)."""

import click

from ..core.errors import SortcoreError
from ..devtools.component import build_component
from ..devtools.package import HANDLER, build_lambda_zip, default_weights, repo_root

WEIGHTS_HELP = ("The fp32 weights the MXNet files are built from (scripts/export_lite0.py writes "
                "them). [default: build/eye/lite0-fp32.npz]")


@click.command("package-lambda")
@click.option("--out", type=click.Path(dir_okay=False), default="dist/sock-lambda.zip", show_default=True,
              help="Where to write the zip.")
@click.option("--model", "model_dir", type=click.Path(file_okay=False), default=None,
              help="Model folder (labels.txt, gallery.npz, calibration.json, SHA256SUMS; "
                   "its MXNet files if it has them). [default: model/]")
@click.option("--weights", type=click.Path(dir_okay=False), default=None, help=WEIGHTS_HELP)
@click.option("--cache", "cache_dir", type=click.Path(file_okay=False), default=None,
              help="Where vendored wheels and built MXNet files are cached. [default: build/lambda-cache]")
def package_lambda(out, model_dir, weights, cache_dir):
    """Build the Greengrass lambda zip: handler, sortcore, model, vendored Python 3.7 deps.

    The network goes in as MXNet files (the DeepLens runs MXNet), built from the
    fp32 weights. MXNet, numpy and OpenCV are not included: the DeepLens has them.
    Upload the zip with deploy/greengrass/deploy.sh (see docs/greengrass.md).
    """
    try:
        report = build_lambda_zip(out, model_dir=model_dir, cache_dir=cache_dir, weights=weights)
    except SortcoreError as exc:
        raise click.ClickException(str(exc))
    click.echo("wrote %s: %.1f KiB, %d files, handler %s" % (report.path, report.size / 1024.0, report.files, HANDLER))
    click.echo("model: %s" % ", ".join(report.model_files))
    click.echo("vendored%s: %s" % (" (cached)" if report.cached else "",
                                   ", ".join("%s %s" % item for item in sorted(report.vendored.items()))))


@click.command("package-component")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="dist/greengrass-v2", show_default=True,
              help="Folder to write sortcore-component.zip into.")
@click.option("--root", type=click.Path(file_okay=False, exists=True), default=None,
              help="The sortcore checkout to package. [default: the one this sortcore runs from]")
@click.option("--model", "model_dir", type=click.Path(file_okay=False), default=None,
              help="Model folder to ship. [default: ROOT/model]")
def package_component(out_dir, root, model_dir):
    """Build the Greengrass v2 component artifact (sortcore source tree + model/, reproducible).

    The recipe in deploy/greengrass-v2/ installs it into a venv on the device
    and runs `sortcore run` (see docs/greengrass-v2.md).
    """
    try:
        report = build_component(out_dir, root=root, model_dir=model_dir)
    except SortcoreError as exc:
        raise click.ClickException(str(exc))
    click.echo("wrote %s: %.1f KiB, %d files, sha256 %s" % (report.path, report.size / 1024.0, report.files,
                                                          report.sha256))
    click.echo("model: %s" % ", ".join(report.model_files))


@click.command("export-mxnet")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True,
              help="The new model folder (must not exist or be empty).")
@click.option("--model", "model_dir", type=click.Path(file_okay=False), default=None,
              help="Model folder whose labels and head go with it. [default: model/]")
@click.option("--weights", type=click.Path(dir_okay=False), default=None, help=WEIGHTS_HELP)
def export_mxnet(out_dir, model_dir, weights):
    """Write a model folder for the MXNet runtime: the network as lite0-symbol.json and
    lite0-0000.params (what --runtime mxnet and the DeepLens model optimizer read), with
    the model's labels and head.
    """
    from ..devtools.lite0_mxnet import write_model
    from ..classifier.folders import shipped_model

    try:
        names = write_model(model_dir or shipped_model(), out_dir,
                            weights or default_weights(repo_root()))
    except SortcoreError as exc:
        raise click.ClickException(str(exc))
    click.echo("wrote %s: %s" % (out_dir, ", ".join(names)))


commands = [package_lambda, package_component, export_mxnet]
