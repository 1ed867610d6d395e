"""Training: a short run on the shared photos exports loadable files, reproducibly."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mxnet")
pytest.importorskip("cv2")

from sortcore.training import augment, train as training  # noqa: E402
from sortcore.errors import ConfigError, ModelError  # noqa: E402
from sortcore.classifier.model import load_model, read_image  # noqa: E402
from sortcore.training.modelcard import build_model  # noqa: E402

PHOTOS = Path(__file__).resolve().parents[1].parent / "shared" / "sock-photos"
needs_photos = pytest.mark.skipif(not any(PHOTOS.glob("*/*.jpg")),
                                  reason="shared photos not found at %s" % PHOTOS)

QUICK = training.TrainOptions(epochs=2, views_per_photo=8, size=32, width=8, progress=False)


def _files(out):
    return sorted(p.name for p in out.iterdir())


@needs_photos
def test_short_training_writes_a_loadable_model_and_card(tmp_path):
    figures = build_model(PHOTOS, tmp_path, QUICK, cv=False, views=2, time_it=False)
    assert _files(tmp_path) == ["README.md", "calibration.json", "labels.txt", "prototypes.npy",
                                "sockclf-0000.params", "sockclf-symbol.json"]
    labels = (tmp_path / "labels.txt").read_text().split()
    assert labels == sorted([p.name for p in PHOTOS.iterdir() if p.is_dir()] + ["Blank"])
    clf = load_model(tmp_path)
    assert clf.size == 32 and clf.labels == labels
    prediction = clf.classify(read_image(next(PHOTOS.glob("*/*.jpg"))))
    assert prediction.label in labels + ["Unknown"]
    assert clf.head.prototypes.shape == (len(labels), 8 * 16)
    card = (tmp_path / "README.md").read_text()
    assert "--epochs 2 --size 32 --seed 0 --no-cv" in card and "Limitations" in card
    assert "not calibrated" in card and "Ensemble" not in card
    assert set(figures["evaluation"].per_class) == set(labels)
    assert clf.head.members == 1 and figures["calibration"]["members"] == 1


#: Layers the DeepLens model optimizer converts (as in tests/test_model.py).
DEEPLENS_OPS = {"null", "Convolution", "BatchNorm", "Activation", "Pooling", "Flatten",
                "FullyConnected", "SoftmaxActivation", "Concat"}


@needs_photos
def test_an_ensemble_is_one_graph_whose_members_are_the_seed_nets(tmp_path):
    """Member k of ``members=N`` is the net trained alone with seed + k (so per-seed LOPO
    files combine into the ensemble's), all in one DeepLens-clean graph; enrolment gives a
    new design a prototype block for every member."""
    import json
    from sortcore.classifier.openset import normalise_blocks
    from sortcore.classifier.model import preprocess
    from sortcore.training import enroll
    options = dataclasses.replace(QUICK, epochs=1, members=2)
    build_model(PHOTOS, tmp_path / "ens", options, cv=False, views=1, time_it=False)
    clf = load_model(tmp_path / "ens")
    labels = clf.labels
    assert clf.head.members == 2 and clf.head.prototypes.shape == (len(labels), 2 * 128)
    assert "Ensemble of 2" in (tmp_path / "ens" / "README.md").read_text()
    graph = json.loads((tmp_path / "ens" / "sockclf-symbol.json").read_text())
    assert {node["op"] for node in graph["nodes"]} <= DEEPLENS_OPS
    labels_, photos = training.load_photos(PHOTOS)
    batch = preprocess([p.image for p in photos[:3]], 32)
    both = clf.forward(batch)
    assert both.shape == (3, 2 * (128 + len(labels)))
    alone = training.forward_of(training.fit(labels_, photos, dataclasses.replace(
        options, members=1, seed=1)))(batch)
    assert np.allclose(both[:, 128 + len(labels):], alone, atol=1e-5)
    images = [p.image for p in photos if p.label == "Github"]
    enroll.enroll(tmp_path / "ens", tmp_path / "more", "MyGithub", images)
    more = load_model(tmp_path / "more")
    assert more.head.prototypes.shape == (len(labels) + 1, 256)
    assert np.allclose(normalise_blocks(more.head.prototypes, 2), more.head.prototypes, atol=1e-5)
    cos, _ = more.head.scores(more.forward(preprocess(images, 32)))
    # (A 1-epoch net barely separates designs: the enrolled prototype is at least as near as
    # any; tests/test_enroll.py checks recognition with the shipped ensemble.)
    assert np.all(cos[:, -1] >= cos.max(axis=1) - 1e-3)


@needs_photos
def test_same_seed_same_weights(tmp_path):
    runs = []
    for name in ("a", "b"):
        build_model(PHOTOS, tmp_path / name, dataclasses.replace(QUICK, epochs=1), cv=False,
                    views=1, time_it=False)
        runs.append((tmp_path / name / "sockclf-0000.params").read_bytes())
    assert runs[0] == runs[1]


@needs_photos
def test_the_cosine_loss_trains_the_same_exported_graph_differently(tmp_path):
    """The cosine-classifier loss is training-only: its class weights are not exported, the
    graph's operators and parameter names are those of plain training, and the weights differ."""
    import json
    graphs, weights = {}, {}
    for name, weight in (("plain", 0.0), ("cosine", 1.0)):
        options = dataclasses.replace(QUICK, epochs=1, cosine_loss=weight)
        build_model(PHOTOS, tmp_path / name, options, cv=False, views=1, time_it=False)
        nodes = json.loads((tmp_path / name / "sockclf-symbol.json").read_text())["nodes"]
        # (operator names such as flatten0 are counters; parameter names are the weights')
        graphs[name] = [(n["op"], n["inputs"], n["name"] if n["op"] == "null" else "")
                        for n in nodes]
        weights[name] = (tmp_path / name / "sockclf-0000.params").read_bytes()
    assert graphs["plain"] == graphs["cosine"]
    assert not any("cosine" in name for _, _, name in graphs["cosine"])
    assert len(weights["plain"]) == len(weights["cosine"])
    assert weights["plain"] != weights["cosine"]
    assert load_model(tmp_path / "cosine").classify(read_image(next(PHOTOS.glob("*/*.jpg"))))
    card = (tmp_path / "cosine" / "README.md").read_text()
    assert "--seed 0 --cosine-loss 1 --no-cv" in card and "CosFace: scale 16" in card
    assert "cosine-loss" not in (tmp_path / "plain" / "README.md").read_text()


def test_card_builder_functions_stay_short():
    import inspect
    from sortcore.training import modelcard
    assert len(inspect.getsource(modelcard.write_card).splitlines()) < 60


def test_own_blank_folder_replaces_synthetic_blanks(tmp_path):
    for label, value in (("Red", (0, 0, 255)), ("Blank", (128, 128, 128))):
        (tmp_path / label).mkdir()
        import cv2
        cv2.imwrite(str(tmp_path / label / "a.png"), np.full((40, 40, 3), value, np.uint8))
    labels, photos = training.load_photos(tmp_path)
    assert labels == ["Blank", "Red"] and len(photos) == 2
    build_model(tmp_path, tmp_path / "out", dataclasses.replace(QUICK, epochs=1), cv=False,
                views=1, time_it=False)
    assert load_model(tmp_path / "out").labels == ["Blank", "Red"]


def test_bad_data_and_options(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        training.load_photos(tmp_path / "nope")
    with pytest.raises(ModelError, match="no photos"):
        training.load_photos(tmp_path)
    with pytest.raises(ConfigError, match="size"):
        training.TrainOptions(size=8)
    with pytest.raises(ConfigError, match="epochs"):
        training.TrainOptions(epochs=0)


def test_augmentation_and_blanks_are_seeded_uint8_images():
    image = np.random.RandomState(0).randint(0, 256, (224, 224, 3)).astype(np.uint8)
    a = augment.augment(image, np.random.RandomState(3), 64)
    b = augment.augment(image, np.random.RandomState(3), 64)
    assert a.shape == (64, 64, 3) and a.dtype == np.uint8 and np.array_equal(a, b)
    blanks = [augment.blank(np.random.RandomState(s), 48) for s in range(20)]
    assert all(x.shape == (48, 48, 3) and x.dtype == np.uint8 for x in blanks)
    assert len({x.tobytes() for x in blanks}) == 20
