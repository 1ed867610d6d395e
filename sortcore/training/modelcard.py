"""Train, calibrate, measure and describe a model: the one call behind ``sortcore train``.

:func:`build_model` trains on a data directory, exports the net, builds the class
prototypes, calibrates the open-set rule on leave-one-photo-out scores
(:mod:`sortcore.training.lopo`, run now or loaded from ``.npz`` files), evaluates the
folder on augmented views, times it against ResNet-18 on one core
(:mod:`sortcore.training.speed`) and writes a model card ``README.md`` with every figure.
"""

import dataclasses
import datetime
import os
import time

from . import lopo, speed, train as training
from .evaluate import evaluate
from .prototypes import class_prototypes
from ..classifier import openset

CARD = "README.md"
UNCALIBRATED = {"tau": 0.95, "margin": 0.0, "blank_min": 0.95}


def build_model(data_dir, out_dir, options=None, cv=True, views=20, time_it=True, scores=None):
    """Train on ``data_dir``, export to ``out_dir``, calibrate, measure and write the card.

    ``scores``: a glob of saved LOPO score files to calibrate from instead of running LOPO.
    Returns the figures written to the card as a dict.
    """
    options = options or training.TrainOptions()
    started = time.time()
    labels, photos = training.load_photos(data_dir)
    nets = training.fit_members(labels, photos, options)
    training.export(nets, labels, out_dir, options.size, options.name)
    dim, members = options.width * 16, options.members
    protos = class_prototypes(training.forward_of(nets), options.size, dim, labels, photos,
                              members=members)
    train_seconds = time.time() - started
    summary, source = None, "not calibrated (trained with --no-cv): default thresholds"
    if scores:
        summary, source = lopo.summarise(lopo.load_scores(scores)), lopo.SCORES_SOURCE + scores
    elif cv:
        result = lopo.cross_validate(data_dir, options, views, progress=options.progress)
        summary, source = lopo.summarise(result), "LOPO run by sortcore train"
    cal = (lopo.calibration(summary, options.size, dim, labels, source, members) if summary else
           dict(UNCALIBRATED, size=options.size, embedding_dim=dim, members=members,
                softmax_labels=labels, calibrated_by=source))
    openset.save_head(out_dir, labels, protos, cal)
    figures = {
        "labels": labels, "options": dataclasses.asdict(options), "data_dir": str(data_dir),
        "photos": len(photos), "train_seconds": round(train_seconds, 1), "views": views,
        "evaluation": evaluate(data_dir, out_dir, views=views), "lopo": summary,
        "calibration": cal, "scores": scores,
        "speed": speed.measure(out_dir) if time_it else None,
        "file_sizes": speed.file_sizes(out_dir),
    }
    write_card(out_dir, figures)
    return figures


def _command(figures):
    o = figures["options"]
    return "sortcore train --data %s --out MODEL_DIR --epochs %d --size %d --seed %d%s%s%s" % (
        figures["data_dir"], o["epochs"], o["size"], o["seed"],
        " --members %d" % o["members"] if o["members"] > 1 else "",
        " --cosine-loss %g" % o["cosine_loss"] if o.get("cosine_loss") else "",
        " --scores '%s'" % figures["scores"] if figures["scores"] else
        "" if figures["lopo"] else " --no-cv")


def _ensemble(o):
    if o["members"] == 1:
        return ""
    return ("Ensemble of %d such nets (the same recipe, seeds %d to %d) in one graph: its output"
            " is each member's embedding and softmax in turn, one Concat; the head averages the"
            " members' cosines (each against its own prototype block) and P(Blank). " % (
                o["members"], o["seed"], o["seed"] + o["members"] - 1))


def _header(figures):
    o = figures["options"]
    return [
        "# Sock classifier `%s`" % o["name"], "",
        "Written by `sortcore train` on %s. Labels: %s; frames it is not sure of are `Unknown`." % (
            datetime.date.today().isoformat(), ", ".join(figures["labels"])), "",
        "## Architecture", "",
        "Tiny MobileNet: 3x3 convolution (stride 2, %d channels), six depthwise-separable blocks"
        " (depthwise 3x3 + pointwise 1x1, BatchNorm, ReLU; up to %d channels), global average"
        " pooling. The exported graph outputs that %d-d embedding concatenated with the softmax"
        " of one fully connected layer; no Dropout. %sOperators: Convolution, BatchNorm,"
        " Activation, Pooling, Flatten, FullyConnected, SoftmaxActivation, Concat (all"
        " DeepLens-supported)." % (o["width"], o["width"] * 16, o["width"] * 16, _ensemble(o)),
        "",
        "Open-set head (numpy, `sortcore.classifier.openset`, also on the camera: the DeepLens"
        " optimised model only computes the raw outputs): one cosine prototype per label%s"
        " (`prototypes.npy`, mean normalised embedding of 40 augmented views; Blank's from"
        " synthetic blanks) and the rule in `calibration.json`." % (
            " and member" if o["members"] > 1 else ""), "",
        "Input: %dx%d RGB, from any BGR frame through `sortcore.classifier.model.preprocess`"
        " (area resize, BGR->RGB, /255, ImageNet mean/std)." % (o["size"], o["size"]), "",
    ]


def _training(figures):
    o = figures["options"]
    return [
        "## Training", "", "```", _command(figures), "```", "",
        "%d photos, %d epochs of %d augmented views per photo (random resized crop, any rotation,"
        " flips, colour/brightness jitter, blur, noise); with probability %.1f the sock (GrabCut"
        " mask) is first pasted on a synthetic background. Synthetic `Blank` frames unless the"
        " data has a `Blank` folder; SGD with momentum, cosine learning rate from %g, seed %d%s."
        "%s Training and prototypes took %.0f s." % (
            figures["photos"], o["epochs"], o["views_per_photo"], o["background_swap"],
            o["learning_rate"], o["seed"], " (+1 per member)" if o["members"] > 1 else "",
            _cosine_loss(o), figures["train_seconds"]), "",
    ]


def _cosine_loss(o):
    if not o.get("cosine_loss"):
        return ""
    return (" Loss: softmax cross-entropy plus %g x a training-only cosine classifier on the"
            " embedding (CosFace: scale %g, margin %g; its weights are not exported)." % (
                o["cosine_loss"], o["cosine_scale"], o["cosine_margin"]))


def _threshold(figures):
    c, s = figures["calibration"], figures["lopo"]
    lines = ["## Threshold (Unknown rule)", "",
             "`%s`: tau = %.3f, margin = %.3f, blank_min = %.2f. Calibrated by: %s." % (
                 openset.RULE, c["tau"], c["margin"], c["blank_min"], c["calibrated_by"]), ""]
    if s:
        cal, nest = s["calibrated"], s["nested"]
        lines += [
            "Leave-one-photo-out (%d photos x %d held-out views): **coverage %.1f %%** of views"
            " accepted, **risk %.1f %%** of accepted views wrong (%.1f %% right, %.1f %% Unknown,"
            " %.1f %% wrong). Nested (threshold fitted without the photo): %.1f / %.1f / %.1f %%."
            " Argmax alone: %.1f %% right. Synthetic unknown designs rejected (Unknown or Blank):"
            " %.1f %%; synthetic blanks called Blank: %.1f %%." % (
                s["folds"], s["views"], 100 * c["coverage"], 100 * c["risk"],
                100 * cal["right"], 100 * cal["unknown"], 100 * cal["wrong"], 100 * nest["right"],
                100 * nest["unknown"], 100 * nest["wrong"], 100 * s["argmax_right"],
                100 * s["unknown_rejected"], 100 * s["blanks_to_blank"]), ""]
    lines += ["`--min-probability P` on classify and watch replaces tau by P/100 (run: not wired yet;"
              " its --min-probability is the engine's frame filter).", ""]
    return lines


def _accuracy(figures):
    e = figures["evaluation"]
    lines = ["## On the training photos", "",
             "%d augmented views per training photo (and synthetic blanks), a seed not used in"
             " training: robustness to camera conditions, not generalisation." % figures["views"],
             "", "| label | right | Unknown | wrong |", "|---|---|---|---|"]
    lines += ["| %s | %d | %d | %d |" % ((label,) + tuple(row))
              for label, row in sorted(e.per_class.items())]
    return lines + ["", "Right %.1f %%, Unknown %.1f %%, wrong %.1f %%." % (
        100 * e.share(0), 100 * e.share(1), 100 * e.share(2)), ""]


def _speed(figures):
    s, sizes = figures["speed"], figures["file_sizes"]
    lines = ["## Speed and size", ""]
    if s:
        lines += ["One CPU core (OMP_NUM_THREADS=1, MXNET_CPU_WORKER_NTHREADS=1, pinned), batch 1,"
                  " median of `classify()` on a 640x480 BGR frame including preprocessing and"
                  " the head:", "", "| model | input | ms/frame |", "|---|---|---|",
                  "| this model | %dx%d | %.2f |" % (s["size"], s["size"], s["ms_per_frame"])]
        if s.get("resnet18_ms_per_frame"):
            lines += ["| ResNet-18 (gluon model zoo, same run) | 224x224 | %.2f |" % (
                s["resnet18_ms_per_frame"])]
        lines.append("")
    lines += ["| file | bytes |", "|---|---|"]
    lines += ["| %s | %d |" % item for item in sorted(sizes.items())]
    return lines + ["| total | %d |" % sum(sizes.values()), ""]


def _limitations(figures):
    return [
        "## Limitations", "",
        "Trained on only %d photos (two per design). Leave-one-photo-out shows what one photo"
        " per design buys: many views of the other photo come out `Unknown` rather than wrong."
        " Designs not in the label list should come out `Unknown` (synthetic probes above),"
        " but real unknown socks were not measured. Add photos from the camera itself with"
        " `sortcore enroll` or retrain (`docs/classifier.md`)." % figures["photos"], "",
    ]


def write_card(out_dir, figures, extra=()):
    """Write the model card ``README.md`` in ``out_dir`` from :func:`build_model` figures."""
    lines = (_header(figures) + _training(figures) + _threshold(figures) + list(extra) +
             _accuracy(figures) + _speed(figures) + _limitations(figures))
    with open(os.path.join(str(out_dir), CARD), "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines))
