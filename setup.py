"""What setup.cfg cannot say: the wheel carries the repository's ``model/`` folder, whatever it
holds, as the package data ``sortcore/model/`` (``sortcore.classifier.folders.shipped_model`` finds it
there, or in ``model/`` of a checkout). Everything else is in setup.cfg."""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["sortcore", "sortcore.*"]) + ["sortcore.model"],
    package_dir={"sortcore.model": "model"},
    package_data={
        # The status page's HTML, JS, CSS and icon (served from the package, no CDN).
        "sortcore.web": ["static/*"],
        # The default model: every file under model/ (net, .onnx, labels, head, card).
        "sortcore.model": ["**/*"],
    },
)
