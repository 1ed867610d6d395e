"""Commands for the camera: package-lambda (the Greengrass zip)."""

import click

from ..errors import SortcoreError
from ..devtools.package import HANDLER, build_lambda_zip


@click.command("package-lambda")
@click.option("--out", type=click.Path(dir_okay=False), default="dist/sock-lambda.zip", show_default=True,
              help="Where to write the zip.")
@click.option("--model", "model_dir", type=click.Path(file_okay=False), default=None,
              help="Model folder (<name>-symbol.json, <name>-0000.params, labels.txt). [default: model/]")
@click.option("--cache", "cache_dir", type=click.Path(file_okay=False), default=None,
              help="Where vendored wheels are cached. [default: build/lambda-cache]")
def package_lambda(out, model_dir, cache_dir):
    """Build the Greengrass lambda zip: handler, sortcore, model, vendored Python 3.7 deps.

    MXNet, numpy and OpenCV are not included: the DeepLens has them. Upload the
    zip with deploy/greengrass/deploy.sh (see docs/greengrass.md).
    """
    try:
        report = build_lambda_zip(out, model_dir=model_dir, cache_dir=cache_dir)
    except SortcoreError as exc:
        raise click.ClickException(str(exc))
    click.echo("wrote %s: %.1f KiB, %d files, handler %s" % (report.path, report.size / 1024.0, report.files, HANDLER))
    click.echo("model: %s" % ", ".join(report.model_files))
    click.echo("vendored%s: %s" % (" (cached)" if report.cached else "",
                                   ", ".join("%s %s" % item for item in sorted(report.vendored.items()))))


commands = [package_lambda]
