"""Train, measure and describe a model: the one call behind ``sortcore train``.

:func:`build_model` trains on a data directory, exports the files, evaluates
them on augmented views, optionally runs leave-one-photo-out, times the model
against ResNet-18 on one core (:mod:`sortcore.training.speed`) and writes a model card
``README.md`` next to the model files with every measured figure.
"""

import dataclasses
import datetime
import os
import time

from . import speed, train as training

CARD = "README.md"


def build_model(data_dir, out_dir, options=None, cv=True, views=20, time_it=True):
    """Train on ``data_dir``, export to ``out_dir``, measure and write the card.

    Returns the figures written to the card as a dict.
    """
    options = options or training.TrainOptions()
    started = time.time()
    labels = training.train(data_dir, out_dir, options)
    train_seconds = time.time() - started
    evaluation = training.evaluate(data_dir, out_dir, views=views)
    figures = {
        "labels": labels,
        "options": dataclasses.asdict(options),
        "data_dir": str(data_dir),
        "photos": len(training.load_photos(data_dir)[1]),
        "train_seconds": round(train_seconds, 1),
        "views": views,
        "per_class": evaluation.per_class,
        "accuracy": evaluation.accuracy,
        "cross_validation": None,
        "speed": None,
    }
    if cv:
        result = training.cross_validate(data_dir, views=views, seed=options.seed,
                                         options=options, progress=options.progress)
        figures["cross_validation"] = {
            "view_accuracy": result.view_accuracy,
            "photos_right": result.photos_right,
            "folds": [dict(dataclasses.asdict(f), ok=f.ok) for f in result.folds],
        }
    if time_it:
        figures["speed"] = speed.measure(out_dir)
    figures.setdefault("file_sizes", speed.file_sizes(out_dir))
    write_card(out_dir, figures)
    return figures


def _command(figures):
    o = figures["options"]
    return "sortcore train --data %s --out MODEL_DIR --epochs %d --size %d --seed %d%s" % (
        figures["data_dir"], o["epochs"], o["size"], o["seed"],
        "" if figures["cross_validation"] else " --no-cv")


def write_card(out_dir, figures):
    """Write the model card ``README.md`` in ``out_dir`` from :func:`build_model` figures."""
    o = figures["options"]
    lines = [
        "# Sock classifier `%s`" % o["name"],
        "",
        "Written by `sortcore train` on %s. Labels (output order): %s." % (
            datetime.date.today().isoformat(), ", ".join(figures["labels"])),
        "",
        "## Architecture",
        "",
        "Tiny MobileNet: 3x3 convolution (stride 2, %d channels), six depthwise-separable blocks"
        " (depthwise 3x3 + pointwise 1x1, BatchNorm, ReLU; up to %d channels), global average"
        " pooling, dropout 0.2, one fully connected layer, softmax. Only standard MXNet"
        " operators (Convolution, BatchNorm, Activation, Pooling, FullyConnected, softmax)." % (
            o["width"], o["width"] * 16),
        "",
        "Input: %dx%d RGB, from any BGR frame through `sortcore.classifier.model.preprocess` (area resize,"
        " BGR->RGB, /255, ImageNet mean/std)." % (o["size"], o["size"]),
        "",
        "## Training",
        "",
        "```",
        _command(figures),
        "```",
        "",
        "%d photos, %d epochs of %d augmented views per photo (random resized crop, any rotation,"
        " flips, colour/brightness jitter, blur, noise), plus synthetic `Blank` frames"
        " (walls, gradients, textures, stripes, noise) unless the data has a `Blank` folder;"
        " SGD with momentum, cosine learning rate from %g, seed %d. Training took %.0f s." % (
            figures["photos"], o["epochs"], o["views_per_photo"], o["learning_rate"], o["seed"],
            figures["train_seconds"]),
        "",
        "## Accuracy",
        "",
        "On %d augmented views per training photo (and synthetic blanks), a seed not used in"
        " training — this measures robustness to camera conditions, not generalisation:" % (
            figures["views"]),
        "",
        "| label | correct | views | accuracy |",
        "|---|---|---|---|",
    ]
    for label, (correct, total) in sorted(figures["per_class"].items()):
        lines.append("| %s | %d | %d | %.1f %% |" % (label, correct, total, 100.0 * correct / total))
    lines += ["", "Overall: %.1f %%." % (100.0 * figures["accuracy"]), ""]
    cv = figures["cross_validation"]
    if cv:
        lines += [
            "Leave-one-photo-out (train without the photo, classify %d augmented views of it,"
            " majority vote): **%.1f %% of views**, **%d of %d photos right**." % (
                figures["views"], 100.0 * cv["view_accuracy"], cv["photos_right"], len(cv["folds"])),
            "",
            "| held-out photo | label | views right | majority |",
            "|---|---|---|---|",
        ]
        for f in cv["folds"]:
            lines.append("| %s | %s | %d/%d | %s |" % (
                os.path.basename(f["path"]), f["label"], f["correct"], f["views"], f["majority"]))
        lines.append("")
        weak = [f for f in cv["folds"] if f["correct"] < 0.95 * f["views"]]
        if weak:
            lines += [
                "Below the 95 %% per-view target on %d held-out photo(s): %s. Trained on a single"
                " photo of that design, the network often confuses the held-out one with a"
                " similar design; only more photos per design will fix that." % (
                    len(weak), ", ".join("%s/%s (%d/%d)" % (
                        f["label"], os.path.basename(f["path"]), f["correct"], f["views"])
                        for f in weak)),
                "",
            ]
    s = figures["speed"]
    lines += ["## Speed and size", ""]
    if s:
        lines += [
            "One CPU core (OMP_NUM_THREADS=1, MXNET_CPU_WORKER_NTHREADS=1, pinned), batch 1,"
            " median of `classify()` on a 640x480 BGR frame including preprocessing:",
            "",
            "| model | input | ms/frame |",
            "|---|---|---|",
            "| this model | %dx%d | %.2f |" % (s["size"], s["size"], s["ms_per_frame"]),
        ]
        if s.get("resnet18_ms_per_frame"):
            lines += [
                "| ResNet-18 (gluon model zoo, same run, same path) | 224x224 | %.2f |" % (
                    s["resnet18_ms_per_frame"]),
                "",
                "This model is %.0fx faster than ResNet-18 here." % s["ratio"],
            ]
        lines.append("")
    lines += ["| file | bytes |", "|---|---|"]
    sizes = figures["file_sizes"] if not s else s["file_sizes"]
    for name, size in sorted(sizes.items()):
        lines.append("| %s | %d |" % (name, size))
    lines += ["| total | %d |" % sum(sizes.values()), ""]
    lines += [
        "## Limitations",
        "",
        "Trained on only %d photos (two per design, 224x224, on one wall and one table)." % (
            figures["photos"]) +
        " Augmentation stretches them, and leave-one-photo-out checks that the second photo of"
        " a design is recognised from the first, but the figures above come from the same few"
        " photos: expect lower accuracy under the real camera, other backgrounds, other"
        " lighting, partly visible socks, or designs not in the label list (they will be"
        " forced into one of the labels — there is no \"unknown\" class apart from `Blank`,"
        " which is synthetic). Retrain with photos from the camera itself"
        " (`docs/classifier.md`).",
        "",
    ]
    with open(os.path.join(str(out_dir), CARD), "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines))
