"""The model card ``README.md`` that ``sortcore train`` writes into a new model folder."""

import datetime
import os

from .calibrate import three
from ..classifier import openset

CARD = "README.md"


def write_card(out_dir, figures):
    """Write ``README.md`` in ``out_dir`` from :func:`sortcore.training.teach.build_model` figures."""
    s = figures["summary"]
    lines = [
        "# Sock classifier", "",
        "Written by `sortcore train --data %s` on %s in %.0f s. Labels: %s; frames it is not"
        " sure of are `Unknown`." % (figures["data_dir"], datetime.date.today().isoformat(),
                                     figures["seconds"], ", ".join(figures["labels"])), "",
        "The network is the base model's frozen embedding (EfficientNet-Lite0, ImageNet"
        " weights; see the base model's card for its source, licence and speed). Nothing was"
        " trained: %d photos were turned, mirrored and augmented into the gallery"
        " (`gallery.npz`), with the metric they are compared in (whitened against frames with"
        " no sock and the views' own spread: `sortcore.training.whiten`)." % figures["photos"], "",
        "## Rule", "",
        "`%s`: k = %d, tau = %.3f, margin = %.3f, floor = %.3f." % (
            openset.RULE, s["k"], s["tau"], s["margin"], s["floor"]), "",
        "Calibrated by leave-one-photo-out (%d photos x %d held-out views) for at most %.0f %%"
        " wrong, and leave-one-design-out (the same views against a gallery without their"
        " design) for at most %.0f %% of never-taught socks called a design." % (
            s["folds"], s["views"], 100 * s["max_risk"], 100 * s["max_untaught"]), "",
        "| measure | value |", "|---|---|",
        "| LOPO argmax right | %.1f %% |" % (100 * s["argmax_right"]),
        "| LOPO right/Unknown/wrong, calibrated | %s %% |" % three(s["calibrated"]),
        "| LOPO right/Unknown/wrong, nested | %s %% |" % three(s["nested"]),
        "| untaught designs (LODO) called a design, calibrated / nested | %.1f / %.1f %% |" % (
            100 * s["untaught_known"], 100 * s["nested_untaught_known"]),
        "| blank probes called Blank | %.1f %% of %d |" % (100 * s["blanks_to_blank"],
                                                          s["blank_probes"]), "",
        "`--min-probability P` on classify and watch replaces tau by P/100.", "",
    ]
    with open(os.path.join(str(out_dir), CARD), "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines))
