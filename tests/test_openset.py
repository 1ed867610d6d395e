"""The open-set head: its rule, its calibration, a fast LOPO fold, and unknown designs."""

import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest

from sortcore.classifier import openset
from sortcore.errors import ModelError

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "model"
PHOTOS = ROOT.parent / "shared" / "sock-photos"
needs_photos = pytest.mark.skipif(not any(PHOTOS.glob("*/*.jpg")),
                                  reason="shared photos not found at %s" % PHOTOS)

LABELS = ["Blank", "Red", "Blue"]
PROTOS = np.eye(3, 4, dtype=np.float32)  # Blank, Red, Blue along axes 0, 1, 2


def head(**cal):
    base = {"tau": 0.8, "margin": 0.1, "blank_min": 0.9, "embedding_dim": 4,
            "softmax_labels": LABELS}
    return openset.Head(LABELS, PROTOS, dict(base, **cal))


def raw(embedding, blank_prob=0.0):
    return np.array([list(embedding) + [blank_prob, 0.0, 0.0]], np.float32)


def test_confident_frames_get_the_nearest_prototype():
    assert head().predict(raw([0, 1, 0.1, 0])) == [("Red", pytest.approx(99.5, abs=0.1))]


def test_far_or_ambiguous_frames_are_unknown():
    assert head().predict(raw([0, 0, 0, 1]))[0][0] == "Unknown"  # far from all
    assert head().predict(raw([0, 1, 0.95, 0]))[0][0] == "Unknown"  # Red vs Blue: no margin


def test_softmax_blank_decides_blank():
    assert head().predict(raw([0, 1, 0, 0], blank_prob=0.97)) == [("Blank", 97.0)]


def test_enrolled_designs_win_over_the_softmax_blank():
    labels = LABELS + ["New"]
    protos = np.vstack([PROTOS, np.array([[0, 0, 0, 1]], np.float32)])
    enrolled = openset.Head(labels, protos, {"tau": 0.8, "margin": 0.1, "blank_min": 0.9,
                                             "embedding_dim": 4, "softmax_labels": LABELS})
    assert enrolled.predict(raw([0, 0, 0, 1], blank_prob=0.97))[0][0] == "New"
    assert enrolled.predict(raw([0, 1, 0, 0], blank_prob=0.97))[0][0] == "Blank"


def test_min_probability_replaces_tau():
    assert head().with_threshold(100).predict(raw([0, 1, 0.3, 0]))[0][0] == "Unknown"
    assert head().with_threshold(None).tau == 0.8


def test_wrong_shapes_are_model_errors():
    with pytest.raises(ModelError, match="expected 7"):
        head().predict(np.zeros((1, 5), np.float32))
    with pytest.raises(ModelError, match="prototypes"):
        openset.Head(LABELS[:2], PROTOS, {"tau": 0.5})


def test_an_ensemble_head_averages_its_members_cosines_and_blank():
    """Raw (N, M * (D + S)): each member's embedding against its own prototype block."""
    rng = np.random.RandomState(3)
    members, dim = 3, 4
    blocks = [rng.randn(3, dim).astype(np.float32) for _ in range(members)]
    protos = openset.normalise_blocks(np.hstack(blocks), members)
    cal = {"tau": 0.0, "margin": 0.0, "blank_min": 0.9, "embedding_dim": dim,
           "softmax_labels": LABELS, "members": members}
    ensemble = openset.Head(LABELS, protos, cal)
    raw_rows, cosines, blanks = [], [], []
    for k in range(members):
        emb = rng.randn(5, dim).astype(np.float32) * (k + 1)  # norms differ per member
        soft = rng.dirichlet(np.ones(3), 5).astype(np.float32)
        raw_rows.append(np.hstack([emb, soft]))
        member = openset.Head(LABELS, protos[:, k * dim:(k + 1) * dim],
                              dict(cal, members=1))
        cos, blank = member.scores(raw_rows[-1])
        cosines.append(cos)
        blanks.append(blank)
    cos, blank = ensemble.scores(np.hstack(raw_rows))
    assert np.allclose(cos, np.mean(cosines, axis=0), atol=1e-6)
    assert np.allclose(blank, np.mean(blanks, axis=0), atol=1e-6)
    assert ensemble.outputs == members * (dim + 3)
    with pytest.raises(ModelError, match="expected 21"):
        ensemble.predict(np.zeros((1, 7), np.float32))


def test_a_folder_without_members_is_one_net_as_before(tmp_path):
    """Model folders written before ensembles (no ``members``) load and score as before."""
    openset.save_head(tmp_path, LABELS, PROTOS, {"tau": 0.8, "margin": 0.1, "blank_min": 0.9,
                                                 "embedding_dim": 4, "softmax_labels": LABELS})
    old = openset.load_head(tmp_path, LABELS)
    frame = raw([0.2, 3.0, 0.1, 0.0])
    emb = frame[:, :4] / np.linalg.norm(frame[:, :4])
    assert old.members == 1 and np.allclose(old.scores(frame)[0], emb @ PROTOS.T)
    assert old.predict(frame) == head(members=1).predict(frame) == [("Red", pytest.approx(99.7,
                                                                                         abs=0.1))]


def test_member_scores_combine_into_ensemble_scores():
    from sortcore.training import lopo
    rng = np.random.RandomState(1)

    def scores(shift):
        arrays = [rng.rand(2, 4, 3) + shift, rng.rand(2, 4), rng.rand(2, 5, 3), rng.rand(2, 5),
                  rng.rand(2, 6, 3), rng.rand(2, 6)]
        return lopo.Scores(LABELS, np.array([1, 2]), *arrays)
    a, b = scores(0.0), scores(1.0)
    both = lopo.mean_scores([a, b])
    assert np.allclose(both.cos, (a.cos + b.cos) / 2)
    assert np.allclose(both.blanks_blank, (a.blanks_blank + b.blanks_blank) / 2)
    with pytest.raises(ValueError, match="folds"):
        lopo.mean_scores([a, dataclasses.replace(b, truth=np.array([2, 1]))])


def test_calibration_keeps_wrong_at_most_max_risk():
    rng = np.random.RandomState(0)
    truth = rng.randint(0, 3, 600)
    scores = rng.uniform(0, 0.6, (600, 3))
    right = rng.rand(600) < 0.7
    boost = np.where(right, rng.uniform(0.3, 0.6, 600), rng.uniform(0.0, 0.25, 600))
    scores[np.arange(600), np.where(right, truth, (truth + 1) % 3)] += boost
    tau, margin = openset.calibrate(scores, truth, max_risk=0.01)
    r, u, w = openset.rates(openset.decide(scores, tau, margin), truth)
    assert w <= 0.01 and r > 0.2 and abs(r + u + w - 1) < 1e-9


def test_head_files_round_trip(tmp_path):
    openset.save_head(tmp_path, LABELS, PROTOS, {"tau": 0.7, "margin": 0.0, "embedding_dim": 4,
                                                 "softmax_labels": LABELS})
    loaded = openset.load_head(tmp_path, LABELS)
    assert loaded.tau == 0.7 and np.array_equal(loaded.prototypes, PROTOS)
    assert (tmp_path / "labels.txt").read_text().split() == LABELS


@needs_photos
def test_fast_lopo_on_a_small_fold(tmp_path):
    """Two designs, four photos, tiny net: the LOPO path runs end to end and keeps its promise."""
    pytest.importorskip("mxnet")
    from sortcore.training import lopo, train as training
    for label in ("Github", "Mongo"):
        (tmp_path / label).mkdir()
        for photo in sorted((PHOTOS / label).glob("*.jpg")):
            os.symlink(photo, tmp_path / label / photo.name)
    options = training.TrainOptions(epochs=2, views_per_photo=8, size=32, width=8, progress=False)
    scores = lopo.cross_validate(tmp_path, options, views=4, progress=False)
    assert scores.cos.shape == (4, 4, 3) and scores.unknown_cos.shape == (4, 100, 3)
    summary = lopo.summarise(scores)
    assert summary["calibrated"]["wrong"] <= 0.01
    assert 0 <= summary["nested"]["right"] <= 1
    cal = lopo.calibration(summary, 32, 128, scores.labels, "test")
    assert cal["risk"] <= 0.01 and 0 <= cal["coverage"] <= 1
    # One fold on its own (a separate process in practice), saved and loaded: the same scores.
    lopo.cross_validate(tmp_path, options, views=4, progress=False, only=[2],
                        export_to=tmp_path / "nets").save(str(tmp_path / "fold02.npz"))
    alone = lopo.load_scores(str(tmp_path / "fold*.npz"))
    assert alone.truth.tolist() == [scores.truth[2]]
    assert np.allclose(alone.cos[0], scores.cos[2]) and np.allclose(alone.blank[0], scores.blank[2])
    # Its net, exported for measurements such as benchmarks/lopo_tta.py, is the one that scored.
    from sortcore.classifier.model import read_labels
    assert read_labels(str(tmp_path / "nets" / "fold02_model" / "labels.txt")) == scores.labels
    assert (tmp_path / "nets" / "fold02_model" / "sockclf-symbol.json").is_file()


@needs_photos
def test_ensemble_lopo_scores_are_the_mean_of_the_seeds_scores(tmp_path):
    """What ``benchmarks/lopo_colour.py combine`` relies on: LOPO of ``members=2`` gives the
    mean of the scores of seeds 0 and 1 run alone (one fold, to stay fast)."""
    pytest.importorskip("mxnet")
    from sortcore.training import lopo, train as training
    for label in ("Github", "Mongo"):
        (tmp_path / label).mkdir()
        for photo in sorted((PHOTOS / label).glob("*.jpg")):
            os.symlink(photo, tmp_path / label / photo.name)
    options = training.TrainOptions(epochs=1, views_per_photo=4, size=32, width=8,
                                    progress=False)

    def run(**changes):
        return lopo.cross_validate(tmp_path, dataclasses.replace(options, **changes), views=3,
                                   progress=False, only=[1])
    both = run(members=2)
    alone = lopo.mean_scores([run(seed=0), run(seed=1)])
    for field in ("cos", "blank", "unknown_cos", "blanks_blank"):
        assert np.allclose(getattr(both, field), getattr(alone, field), atol=1e-5), field


def test_synthetic_unknown_designs_are_mostly_unknown_or_blank():
    """Patterned socks of designs it never saw, on wall/wood backgrounds.

    The target is "never a known design"; the shipped model does not meet it: 2-4 % of such
    views come out a known design (benchmarks/unknown_designs.py, seeds 1, 9001, 31337; the
    one-net model before the ensemble: 8-10 %; LOPO: 2.1 %). This bound keeps it from getting
    worse; the count's de-ghosting needs 4 frames of one design.
    """
    pytest.importorskip("mxnet")
    from sortcore.classifier.model import load_model
    from sortcore.training import synth
    clf = load_model(MODEL)
    views = synth.unknown_views(100, seed=31337)  # not the seed LOPO measures with
    labels = [p.label for p in clf.classify_many(views)]
    known = [label for label in labels if label not in ("Unknown", "Blank")]
    assert len(known) <= 8, known


def test_unknown_design_socks_counted_as_known_stay_rare():
    """Per sock, through the engine (model/README.md: 6 of 60 for this model, 1 of the first
    20). A bound, not the goal (never): it keeps a model that counts more of them from
    shipping quietly; a stricter --min-probability counts fewer."""
    pytest.importorskip("mxnet")
    from sortcore.classifier.model import load_model
    from sortcore.training.unknown_socks import confirmed_as, known

    assert known(confirmed_as(load_model(str(MODEL)), 20)) <= 3
    assert known(confirmed_as(load_model(str(MODEL), min_probability=94), 20)) <= 1


def test_the_shipped_calibration_is_what_its_committed_lopo_scores_give():
    """model/calibration.json names the LOPO scores it came from; refitting them gives the same rule."""
    import json
    from sortcore.training import lopo

    cal = json.loads((MODEL / "calibration.json").read_text())
    pattern = lopo.scores_pattern(cal)
    assert pattern is not None, cal["calibrated_by"]
    summary = lopo.summarise(lopo.load_scores(str(ROOT / pattern)))
    assert summary["folds"] == 12 and summary["views"] == 20
    for key in ("tau", "margin", "blank_min"):
        assert summary[key] == pytest.approx(cal[key], abs=1e-12)
    accepted = summary["calibrated"]["right"] + summary["calibrated"]["wrong"]
    assert cal["coverage"] == pytest.approx(accepted, abs=1e-4)
    card = (MODEL / "README.md").read_text()
    figures = " | ".join(lopo.card_cells(summary).split(" | ")[:5])
    assert "this model)** | %s |" % figures in card, figures
