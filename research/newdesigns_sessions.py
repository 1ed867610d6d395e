"""Simulated laundry loads through the real new-designs code and engine (issue 24).

    python research/newdesigns_calibrate.py sessions [WALL] [SESSIONS] [UNTAUGHT] [TAUGHT]

A load: UNTAUGHT restyled designs and TAUGHT of the six taught designs (real photos), both socks
of each, in a random order; a sock is its 12 cached hold frames (3 s at 4 fps) and 2 s of
wall (Blank) follow. Frames are labelled by the taught head (on the cached embeddings) and
:class:`~sortcore.classifier.newdesigns.NewDesigns`, counted by the
:class:`~sortcore.core.engine.Engine`, whose confirmed socks go back to ``confirmed``. Counts per
load: false pairs (a label counted for socks of two designs), splits (a design's socks under
two labels), taught socks counted wrong, socks left Unknown.
"""

import collections

import numpy as np

import newdesigns_calibrate as calib
import newdesigns_sets as nd
from sortcore.classifier.newdesigns import NewDesigns
from sortcore.classifier.backends import load_classifier
from sortcore.classifier.foreground import Found
from sortcore.classifier.session import engine_labels, head_label, judge_for
from sortcore.core.engine import Engine, EngineConfig, SockConfirmed
from sortcore.core.frames import Frame

FPS, WALL_SECONDS = 4.0, 2.0


def region_labels(head, views, shifts, empty_top):
    """The head's (label, probability) of a hold's frames, with the camera side's rule for a
    region the head calls Blank (:func:`sortcore.classifier.session.head_label`)."""
    out = []
    for view, shift in zip(views, shifts):
        found = None if np.isnan(shift) else Found((0, 0, 1, 1), None, False, None, False, float(shift))
        out.append(head_label(head, head.scores(view[None]), found, empty_top))
    return out


def one_load(sets, head, socks, rng, shifts=None, empty_top=None):
    """Run one load; returns {design: [labels counted for its socks]} and Unknown socks.
    ``shifts``: :func:`newdesigns_sets.region_shifts`'s, for the rule on Blank regions."""
    config = EngineConfig(lateness=0.0)  # run's and count's
    engine = Engine(config)
    designs = NewDesigns(gap=config.gap, decide=config.min_frames, taught=head.labels, judge=judge_for(head),
                         in_use=lambda: engine_labels(engine))
    counted, unknown, ts = collections.defaultdict(list), 0, 0.0
    for name in socks:
        design, views, palettes = sets[name]
        labels = region_labels(head, views, shifts[name] if shifts else [np.nan] * len(views), empty_top)
        scores = head.scores(views)[0]
        regions = ~np.isnan(shifts[name]) if shifts else np.zeros(len(views), bool)
        for view, colours, (label, p), score, region in zip(views, palettes, labels, scores, regions):
            ts += 1 / FPS
            if label == "Blank" and region and designs.continues("cam", ts, view, colours):
                label, p = "Unknown", 100.0 - p  # the camera side's rule: the sock still held up
            label = designs.label("cam", ts, label, view, colours, scores=score)
            for event in engine.feed(Frame(label, p, ts, "cam", 0)):
                if isinstance(event, SockConfirmed):
                    designs.confirmed(event.label, "cam")
                    if event.label == "Unknown":
                        unknown += 1
                    else:
                        counted[design].append(event.label)
        for _ in range(int(WALL_SECONDS * FPS)):
            ts += 1 / FPS
            engine.feed(Frame("Blank", 99.0, ts, "cam", 0))
    engine.close_all()
    return counted, unknown


def judge(counted, taught):
    """(false pairs, splits, taught socks wrong, socks missed) of one load."""
    owners = collections.defaultdict(set)
    for design, labels in counted.items():
        for label in labels:
            owners[label].add(design)
    false = sum(1 for label, who in owners.items() if len(who) > 1)
    splits = sum(1 for design, labels in counted.items() if len(set(labels)) > 1)
    wrong = sum(1 for design, labels in counted.items() if design in taught
                for label in labels if label != design)
    missed = sum(2 - len(labels) for labels in counted.values() if len(labels) < 2)
    return false, splits, wrong, missed


def main(args):
    wall = int(args[0]) if args else nd.WALL_SEED
    loads = int(args[1]) if len(args) > 1 else 50
    untaught, taught_n = (int(args[2]) if len(args) > 2 else 6), (int(args[3]) if len(args) > 3 else 3)
    sets, _ = nd.embedded(calib.ONNX, wall)
    classifier = load_classifier(calib.MODEL)
    head = classifier.head
    shifts, empty = nd.region_shifts(wall)
    empty_top = float(head.scores(classifier.embed(empty))[0].max())
    by_design = collections.defaultdict(list)
    for name, (design, _, _) in sets.items():
        by_design[design].append(name)
    restyled = sorted(d for d in by_design if d.startswith("r"))
    real = sorted(d for d in by_design if not d.startswith(("r", "t")))
    rng = np.random.RandomState(wall)
    totals, per_load = np.zeros(4, int), []
    for _ in range(loads):
        chosen = list(rng.choice(restyled, untaught, replace=False)) + list(rng.choice(real, taught_n, replace=False))
        socks = [name for d in chosen for name in sorted(by_design[d])]
        rng.shuffle(socks)
        counted, unknown = one_load(sets, head, socks, rng, shifts, empty_top)
        for d in chosen:
            counted.setdefault(d, [])
        result = judge(counted, set(real))
        totals += result
        per_load.append(result + (unknown,))
    per_load = np.array(per_load)
    print("wall %d, %d loads of %d untaught + %d taught designs (both socks each):" % (wall, loads, untaught, taught_n))
    print("  false pairs %d, designs split %d of %d, taught socks counted wrong %d, socks not counted %d,"
          " socks left Unknown %d; loads exact %d of %d" % (
              totals[0], totals[1], loads * untaught, totals[2], totals[3], per_load[:, 4].sum(),
              int((per_load.sum(axis=1) == 0).sum()), loads))
