"""New designs found in the session (issue 24), without the model: the tracks and candidates of
:class:`NewDesigns` fed to the real engine, naming and merging through the real store, the user
model folder, the colours and the sock's box. The model's end-to-end tests are in
tests/test_newdesigns_run.py."""

import json
import logging
import os

import numpy as np
import pytest

from sortcore.classifier import foreground, palette
from sortcore.classifier.design import Design, from_row, to_row
from sortcore.classifier.newdesigns import NewDesigns
from sortcore.classifier.session import engine_labels
from sortcore.store.designstore import DesignStore
from sortcore.core.engine import Engine, EngineConfig, SockConfirmed
from sortcore.core.errors import BadFrame, ConfigError
from sortcore.core.frames import Frame
from sortcore.core.messages import mark_untaught, rows_as_dicts
from sortcore.store.pipeline import Pipeline
from sortcore.runtime.control import parse_control
from sortcore.runtime.designs import check_name
from tests.shared import sightings

DIM = 16
RED = palette.palette(np.tile(np.array([[30, 30, 220]], np.uint8), (500, 1)))
BLUE = palette.palette(np.tile(np.array([[220, 60, 30]], np.uint8), (500, 1)))


def unit(seed):
    v = np.random.RandomState(seed).normal(size=DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def frames_of(base, count, seed, spread=0.15):
    """``count`` unit vectors near ``base`` (frames of one sock)."""
    rng = np.random.RandomState(seed)
    out = base[None, :] + spread * rng.normal(size=(count, DIM)).astype(np.float32) / np.sqrt(DIM)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


class Load(object):
    """NewDesigns and the real engine, fed like the camera side feeds them."""

    def __init__(self, designs=None):
        self.config = EngineConfig(lateness=0)  # as run and count: frames in order, no sock waits
        self.engine = Engine(self.config)
        self.designs = designs or NewDesigns(gap=self.config.gap, decide=self.config.min_frames,
                                             taught=("Github", "Blank"), in_use=lambda: engine_labels(self.engine))
        self.ts = 0.0

    def sock(self, views, colours, heads=None, frames=12, picture=None):
        labels = []
        for i in range(frames):
            self.ts += 0.25
            head = heads[i] if heads else "Unknown"
            crop = (float(i), picture) if picture is not None else None  # the last frame is the clearest
            label = self.designs.label("cam", self.ts, head, views[i % len(views)], colours, crop)
            labels.append(label)
            for event in self.engine.feed(Frame(label, 60.0, self.ts, "cam", i)):
                if isinstance(event, SockConfirmed):
                    self.designs.confirmed(event.label, "cam", event.sighting)
        self.ts += 2.0  # the wall between socks: longer than the gap
        return labels


def test_two_socks_of_a_design_pair_and_another_design_is_new():
    load, a, b = Load(), unit(1), unit(2)
    first = load.sock(frames_of(a, 12, 10), RED)
    assert set(first) == {"New 1"} and list(load.designs.designs) == ["New 1"]
    assert set(load.sock(frames_of(b, 12, 11), BLUE)) == {"New 2"}
    assert set(load.sock(frames_of(a, 12, 12), RED)) == {"New 1"}
    assert dict(load.engine.counts) == {"New 1": 2, "New 2": 1}
    assert load.engine.unknown == 0


def test_the_same_cloth_in_other_colours_is_another_design():
    """A recoloured copy: the embedding alike, the colours not: never a false pair."""
    load, a = Load(), unit(1)
    load.sock(frames_of(a, 12, 10), RED)
    assert set(load.sock(frames_of(a, 12, 11), BLUE)) == {"New 2"}


def test_a_ghost_candidate_frees_its_number_and_counts_nothing():
    load, a, b = Load(), unit(1), unit(2)
    assert load.sock(frames_of(a, 3, 10), RED, frames=3) == ["New 1"] * 3  # 3 frames: a ghost
    assert set(load.sock(frames_of(b, 12, 11), BLUE)) == {"New 1"}  # its number is free again
    assert dict(load.engine.counts) == {"New 1": 1}


def test_a_design_said_not_a_sock_is_blank_when_held_up_again_and_others_are_still_new():
    """A towel held up became New 1; the person says it is not a sock. Held up again it is
    Blank (the engine counts nothing), its live track too, and a real sock is New 2."""
    load, towel, sock = Load(), unit(1), unit(2)
    assert set(load.sock(frames_of(towel, 12, 10), RED)) == {"New 1"}
    load.engine.forget("New 1")
    load.designs.forget("New 1")
    assert list(load.designs.designs) == [] and list(load.designs.ignored) == ["New 1"]
    assert load.designs.take_changed() == []  # nothing of it is stored again
    assert set(load.sock(frames_of(towel, 12, 11), RED)) == {"Blank"}
    assert set(load.sock(frames_of(sock, 12, 12), BLUE)) == {"New 2"}  # its number is not given again
    assert set(load.sock(frames_of(towel, 12, 13), BLUE)) == {"New 3"}  # colours differ: not that towel
    assert dict(load.engine.counts) == {"New 2": 1, "New 3": 1}
    live = [load.designs.label("cam", load.ts + 0.25 * i, "Unknown", sock, BLUE) for i in range(1, 6)]
    assert live == ["New 2"] * 5 and load.designs.tracks["cam"][-1].frames == 5  # decided: its label stays
    load.designs.forget("New 2")  # a live track of it is the wall from its next frame on
    assert load.designs.label("cam", load.ts + 1.5, "Unknown", sock, BLUE) == "Blank"


def test_a_false_pair_split_apart_gives_each_design_its_own_socks_from_then_on():
    """Orange with dots and orange with rings: alike enough that the second sock matched the
    first's design (a false pair, New 1 x 2). Told apart, the second sock's views and picture are
    New 2, and the next sock of each design is counted under its own label."""
    load, dots = Load(), unit(1)
    rings = 0.75 * dots + 0.66 * unit(2)
    rings /= np.linalg.norm(rings)
    assert set(load.sock(frames_of(dots, 12, 10), RED, picture="dots")) == {"New 1"}
    assert set(load.sock(frames_of(rings, 12, 11), RED, picture="rings")) == {"New 1"}  # the false pair
    assert load.engine.counts == {"New 1": 2}
    with pytest.raises(ValueError, match="sock 2 of New 1 is still held up"):
        load.designs.split("New 1", 2)
    load.designs.finish()  # the sock is put down: its track ends, its views join New 1
    first = load.designs.designs["New 1"]
    assert sorted(set(first.owners.tolist())) == [1, 2] and dict(first.socks) == {1: "dots", 2: "rings"}
    saved = []
    moved = load.designs.split("New 1", 2, save=lambda kept, new: saved.append((kept.name, new.name)))
    load.engine.move("New 1", moved.name)
    assert saved == [("New 1", "New 2")] and moved.name == "New 2" and moved.picture == "rings"
    assert [d.name for d in load.designs.take_changed()] == ["New 1", "New 2"]  # their pictures to make
    kept = load.designs.designs["New 1"]
    assert set(kept.owners.tolist()) == {1} and set(moved.owners.tolist()) == {2}
    assert list(kept.socks) == [1] and kept.picture == "dots" and len(kept.views) + len(moved.views) == len(first.views)
    assert set(load.sock(frames_of(rings, 12, 12), RED)) == {"New 2"}
    assert set(load.sock(frames_of(dots, 12, 13), RED)) == {"New 1"}
    assert load.engine.counts == {"New 1": 2, "New 2": 2}
    load.designs.finish()
    with pytest.raises(ValueError, match="no view of sock 9 is kept in New 1"):
        load.designs.split("New 1", 9)
    load.designs.designs["New 3"] = Design("New 3", frames_of(unit(3), 4, 3), [BLUE] * 4, None, 7)
    with pytest.raises(ValueError, match="sock 7 is the only sock of New 3"):
        load.designs.split("New 3", 7)
    stored = from_row(dict(to_row(Design("Old", frames_of(unit(3), 2, 3), [BLUE] * 2)), owners=None))
    assert stored.owners.tolist() == [0, 0]  # a row stored before owners were kept: nobody's views


def test_a_sock_the_engine_still_holds_keeps_its_number_after_its_track_ended():
    """A candidate's sock confirmed late (lateness lets a sock wait) after its track ended is
    never a design; its number stays taken while the engine holds the sock, so another design
    cannot take it and be counted as its pair."""
    held = {"New 1"}
    designs = NewDesigns(in_use=lambda: held)
    assert designs.label("cam", 0.0, "Unknown", unit(1), RED) == "New 2"
    held.clear()
    assert designs.label("cam", 10.0, "Unknown", unit(2), BLUE) == "New 1"  # free once the engine let it go


def test_a_sock_is_never_counted_twice_when_its_track_changes_its_mind():
    """The first frames of the second sock are nearer nothing; by the 4th it matches New 1:
    the frames it gave the candidate number are fewer than min_frames, a ghost."""
    load, a = Load(), unit(1)
    load.sock(frames_of(a, 12, 10), RED)
    views = np.vstack([frames_of(a, 2, 20, spread=1.2), frames_of(a, 10, 21)])
    labels = load.sock(views, RED)
    assert labels[-1] == "New 1" and sum(load.engine.counts.values()) == 2, (labels, load.engine.counts)


def test_a_stray_taught_frame_does_not_make_an_untaught_sock_taught():
    """The track's label is what most of its first 4 frames say (half, when no session design
    matches); the first frame's 'Github' (a ghost of one frame) is all that the stray frame gets."""
    load, a = Load(), unit(1)
    labels = load.sock(frames_of(a, 12, 10), RED, heads=["Github"] + ["Unknown"] * 11)
    assert labels[2:] == ["New 1"] * 10 and dict(load.engine.counts) == {"New 1": 1}
    heads = ["Github", "Github", "Unknown", "Github"] + ["Unknown"] * 8  # a taught sock, unsure at times
    assert set(load.sock(frames_of(unit(5), 12, 11), BLUE, heads=heads)) == {"Github"}
    assert dict(load.engine.counts) == {"New 1": 1, "Github": 1}


def test_a_session_design_beats_a_taught_design_named_on_half_of_the_frames():
    """The second sock of an untaught design that the head calls Github on 2 of its first 4
    frames (a sock on a taught design's silhouette) is its session design, not a false pair
    with Github; a taught sock named on half of its frames, matching no session design, is
    still Github."""
    load, a = Load(), unit(1)
    load.sock(frames_of(a, 12, 10), RED)
    heads = ["Unknown", "Unknown", "Github", "Github"] + ["Unknown"] * 8
    assert set(load.sock(frames_of(a, 12, 30), RED, heads=heads)) == {"New 1"}
    heads = ["Unknown", "Github", "Unknown", "Github"] + ["Unknown"] * 8
    assert set(load.sock(frames_of(unit(5), 12, 11), BLUE, heads=heads)[3:]) == {"Github"}
    assert dict(load.engine.counts) == {"New 1": 2, "Github": 1}  # the first frame's New 2: a ghost


def test_a_region_the_head_calls_blank_is_a_sock_when_its_colours_moved():
    """A stripy sock on a dark wall can score under the head's Blank floor: it is Unknown when
    it stands out from the empty scene by its colours and scores LIFT above the scene; a
    shadow (the same colours, darker) stays Blank."""
    from sortcore.classifier.openset import Head
    from sortcore.classifier.session import LIFT, SHIFT, head_label
    head = Head(["Blank", "Github"], [unit(1)], [1], {"k": 1, "tau": 0.5, "margin": 0.0, "floor": 0.3})
    other = unit(3) - unit(3).dot(unit(1)) * unit(1)
    frame = 0.25 * unit(1) + np.sqrt(1 - 0.25 ** 2) * other / np.linalg.norm(other)  # 0.25: under the floor
    scores = head.scores(frame[None])
    assert head.predict_scores(*scores)[0][0] == "Blank"
    wall = np.full((480, 640, 3), (70, 40, 60), np.uint8)
    sock, shadow = wall.copy(), wall.copy()
    sock[100:300, 200:320] = np.where(np.arange(200)[:, None, None] % 40 < 20, (200, 140, 170), (20, 120, 110))
    shadow[100:300, 200:320] = (wall[100:300, 200:320] * 0.55).astype(np.uint8)
    found, dark = (foreground.find(f, foreground.small(wall)) for f in (sock, shadow))
    assert found.box and dark.box and found.shift >= SHIFT > dark.shift
    best = float(scores[0].max())
    assert head_label(head, scores, found, best - LIFT - 0.01)[0] == "Unknown"
    assert head_label(head, scores, dark, best - LIFT - 0.01)[0] == "Blank"
    assert head_label(head, scores, found, best - LIFT + 0.01)[0] == "Blank"  # not above the scene
    assert head_label(head, scores)[0] == "Blank"  # no empty scene known


def test_a_frame_the_head_calls_blank_continues_the_sock_held_up():
    """A frame that would join a live track is the sock still held up, whatever the head said
    of it; a frame of another thing, or after the track ended, is not."""
    load, a = Load(), unit(1)
    load.sock(frames_of(a, 6, 10), RED, frames=6)
    designs, ts = load.designs, load.ts - 2.0
    assert designs.continues("cam", ts + 0.25, frames_of(a, 1, 40)[0], RED)
    assert not designs.continues("cam", ts + 0.25, unit(7), RED)  # another thing
    assert not designs.continues("cam", ts + 0.25, frames_of(a, 1, 41)[0], BLUE)  # other colours
    assert not designs.continues("other", ts + 0.25, frames_of(a, 1, 40)[0], RED)  # another camera
    assert not designs.continues("cam", ts + 2.0, frames_of(a, 1, 40)[0], RED)  # the track ended


def test_rename_and_merge_keep_views_and_tracks():
    designs = NewDesigns(taught=("Github",))
    designs.designs["New 1"] = Design("New 1", frames_of(unit(1), 4, 1), [RED] * 4, b"jpeg")
    designs.designs["New 2"] = Design("New 2", frames_of(unit(2), 4, 2), [BLUE] * 4)
    assert designs.rename("New 1", "Stripy").name == "Stripy"
    merged = designs.rename("New 2", "Stripy")
    assert len(merged.views) == 8 and list(designs.designs) == ["Stripy"] and merged.picture == b"jpeg"
    assert designs.rename("Stripy", "Github") is None and not designs.designs
    row = to_row(Design("X", frames_of(unit(1), 3, 1), [RED] * 3, b"pic"))
    back = from_row(row)
    assert back.views.shape == (3, DIM) and back.picture == b"pic"
    assert np.allclose(back.palettes[0], RED, atol=1e-3)


def test_colours_tell_apart_what_they_should():
    assert palette.cover(RED, RED[None])[0] == pytest.approx(1.0)
    assert palette.cover(RED, BLUE[None])[0] == 0.0
    def mix(red):
        return palette.palette(np.vstack([np.tile([[30, 30, 220]], (red, 1)),
                                          np.tile([[220, 60, 30]], (1000 - red, 1))]).astype(np.uint8))
    assert palette.cover(mix(500), RED[None])[0] == 0.0  # blue in one only: another design
    assert palette.cover(mix(700), mix(500)[None])[0] == pytest.approx(np.sqrt(0.3 / 0.5), abs=0.01)


def test_the_sock_is_found_against_the_empty_wall():
    wall = np.full((480, 640, 3), 180, np.uint8)
    frame = wall.copy()
    frame[100:300, 200:320] = (20, 40, 200)
    found = foreground.find(frame, foreground.small(wall))
    x0, y0, x1, y1 = found.box
    assert abs(x0 - 200) <= 8 and abs(y0 - 100) <= 8 and abs(x1 - 320) <= 8 and abs(y1 - 300) <= 8
    assert not found.changed and len(found.pixels) > 0
    crop = foreground.crop(frame, found.box)
    assert crop.shape[0] == crop.shape[1] >= 200
    assert found.still is False and foreground.find(wall, foreground.small(wall)).still  # the wall again
    assert found.still is False and foreground.find(wall, foreground.small(wall)).still  # the wall again
    assert foreground.find(wall, foreground.small(wall)).box is None  # nothing there
    light = np.full((480, 640, 3), 60, np.uint8)  # the light went out: the scene changed
    assert foreground.find(light, foreground.small(wall)).changed


def test_a_frame_that_is_the_empty_scene_is_blank_without_the_net():
    """Most frames of a sorting station are the empty wall: once the head has called the wall
    Blank, a frame no pixel of which differs from it is Blank at the same probability with
    nothing embedded; a sock held up is embedded again."""
    pytest.importorskip("onnxruntime")
    from sortcore.classifier.backends import load_classifier
    from sortcore.classifier.session import session_classifier
    from tests.shared import ROOT

    classifier = load_classifier(str(ROOT / "model"))
    embedded = []
    embed = classifier.embed
    classifier.embed = lambda images: embedded.append(1) or embed(images)
    labeller = session_classifier(classifier)
    rng = np.random.RandomState(0)
    wall = np.full((480, 640, 3), 170, np.uint8)
    noisy = [np.clip(wall + rng.normal(0, 2, wall.shape), 0, 255).astype(np.uint8) for _ in range(6)]
    first = labeller.classify_at(noisy[0], 0.25)
    assert first.label == "Blank" and len(embedded) == 1
    again = [labeller.classify_at(frame, 0.5 + 0.25 * i) for i, frame in enumerate(noisy[1:])]
    assert [p.label for p in again] == ["Blank"] * 5 and {p.probability for p in again} == {first.probability}
    assert len(embedded) == 1  # the wall again: no net
    sock = noisy[0].copy()
    sock[100:380, 250:370] = (40, 60, 200)
    labeller.classify_at(sock, 2.0)
    assert len(embedded) == 2


def test_rows_of_designs_found_in_the_session_say_so():
    rows = rows_as_dicts([("Github", 2, "Pair", 1), ("New 1", 1, "Un-matched", 0), ("Stripy", 2, "Pair", 1)],
                         untaught={"Stripy"})
    assert [row.get("taught", True) for row in rows] == [True, False, False]
    assert "taught" not in rows[0]  # taught rows as they always were
    assert mark_untaught({"image": "New 12"}) == {"image": "New 12", "taught": False}


def test_names_and_commands_are_checked():
    assert check_name("  Blue   stripes ") == "Blue stripes"
    for bad in ("", "New 3", "Unknown", "x" * 65, "a\x00b"):
        with pytest.raises(BadFrame):
            check_name(bad)
    assert parse_control(b'{"cmd": "name", "design": "New 1", "name": "Blue"}') == ("name", ("New 1", "Blue"))
    assert parse_control(b'{"cmd": "merge", "design": "New 2", "into": "New 1"}') == ("merge", ("New 2", "New 1"))
    with pytest.raises(BadFrame, match=r"needs design \(a string\) and into \(a string\)"):
        parse_control(b'{"cmd": "merge", "design": "New 2"}')
    assert parse_control(b'{"cmd": "forget", "design": "New 3"}') == ("forget", ("New 3",))
    with pytest.raises(BadFrame, match="forget needs design"):
        parse_control(b'{"cmd": "forget", "design": ""}')
    assert parse_control(b'{"cmd": "split", "design": "New 3", "sock": 17}') == ("split", ("New 3", 17))
    for sock in (b'"17"', b"0", b"true", b"1.5", b"null"):  # a sighting id: a whole number from 1
        with pytest.raises(BadFrame, match=r"split needs design \(a string\) and sock \(a sighting id\)"):
            parse_control(b'{"cmd": "split", "design": "New 3", "sock": %s}' % sock)


def test_relabel_moves_counts_sightings_and_state_in_one_transaction(store):
    pipe = Pipeline(store, EngineConfig(min_frames=2, lateness=0), source="camera:t")
    for i, label in enumerate(["New 1", "New 1", "Blank", "New 2", "New 2"]):
        pipe.feed(Frame(label, 60.0, 100.0 + i, "t", i))
    pipe.commit()
    rows = DesignStore(store)
    rows.save(pipe.session, [to_row(Design(n, frames_of(unit(i), 2, i), [RED] * 2, b"p"))
                             for i, n in enumerate(["New 1", "New 2"])])
    pipe.relabel("New 2", "New 1", lambda session, state, cameras: rows.relabel(
        session, "New 2", "New 1", state, [to_row(Design("New 1", frames_of(unit(1), 4, 1), [RED] * 4))],
        cameras))
    assert [r["image"] for r in sightings(store, pipe.session)] == ["New 1", "New 1"]
    assert store.pairs(pipe.session) == [{"image": "New 1", "number_socks_seen": 2, "pair_seen": "Pair", "pairs": 1}]
    assert store.session(pipe.session)["engine_state"]["counts"] == {"New 1": 2}
    assert [(r["name"], r["count"]) for r in rows.load(pipe.session)] == [("New 1", 4)]
    rows.save(pipe.session, [to_row(Design("New 1", frames_of(unit(1), 2, 1), [RED] * 2, b"q"))])
    rows.save(pipe.session, [to_row(Design("New 1", frames_of(unit(1), 5, 1), [RED] * 5))])
    assert rows.picture(pipe.session, "New 1") == b"q"  # a row without a picture keeps the stored one
    with pytest.raises(ConfigError):
        pipe.engine.relabel("New 1", "Unknown")
    new = pipe.reset()
    assert rows.keep_only(new) == 1 and rows.load(pipe.session) == []


def test_forget_deletes_the_design_its_sightings_and_counts_in_one_transaction(store, caplog):
    pipe = Pipeline(store, EngineConfig(min_frames=2, lateness=0), source="camera:t")
    for i, label in enumerate(["New 1", "New 1", "Blank", "New 2", "New 2", "Blank", "New 1", "New 1"]):
        pipe.feed(Frame(label, 60.0, 100.0 + i, "t", i))
    rows = DesignStore(store)
    rows.save(pipe.session, [to_row(Design(n, frames_of(unit(i), 2, i), [RED] * 2, b"p"))
                             for i, n in enumerate(["New 1", "New 2"])])

    def fail(session, state, cameras):
        raise OSError("disk gone")
    with pytest.raises(OSError):
        pipe.forget("New 1", fail)
    assert pipe.engine.counts == {"New 1": 2, "New 2": 1}  # put back as it was
    with caplog.at_level(logging.INFO, logger="sortcore.store.designstore"):
        removed = pipe.forget("New 1", lambda session, state, cameras: rows.forget(session, "New 1", state, cameras))
    assert removed == 2 and pipe.engine.counts == {"New 2": 1}
    assert "New 1 is not a sock: 2 socks removed" in caplog.text
    assert [r["image"] for r in sightings(store, pipe.session)] == ["New 2"]
    assert store.pairs(pipe.session) == [{"image": "New 2", "number_socks_seen": 1, "pair_seen": "Un-matched", "pairs": 0}]
    assert store.session(pipe.session)["engine_state"]["counts"] == {"New 2": 1}
    assert [r["name"] for r in rows.load(pipe.session)] == ["New 2"]


def test_split_moves_one_sighting_both_design_rows_and_one_count_in_one_transaction(store):
    """A false pair under New 1 (sightings 1 and 2): sock 2 is told apart as New 2. Its sighting,
    the two design rows with their socks' pictures and the engine's counts change together;
    a failing write changes nothing, nor does a sock that is not of the design."""
    pipe = Pipeline(store, EngineConfig(min_frames=2, lateness=0), source="camera:t")
    for i, label in enumerate(["New 1", "New 1", "Blank", "New 1", "New 1"]):
        pipe.feed(Frame(label, 60.0, 100.0 + i, "t", i))
    pipe.commit()
    rows, session = DesignStore(store), pipe.session
    both = Design("New 1", np.vstack([frames_of(unit(1), 2, 1), frames_of(unit(2), 2, 2)]), [RED] * 4, b"p",
                  [1, 1, 2, 2], {1: b"one", 2: b"two"})
    rows.save(session, [to_row(both)])
    assert [(d["name"], d["socks"]) for d in rows.load(session)] == [("New 1", [(1, b"one"), (2, b"two")])]
    kept, moved = both.parted(2, "New 2")

    def split(sock, fail=False):
        def save(session, state, cameras):
            if fail:
                raise OSError("disk gone")
            rows.split(session, sock, "New 1", [to_row(kept), to_row(moved)], state, cameras)
        pipe.split("New 1", "New 2", save)
    for sock, fail, error in ((2, True, OSError), (9, False, ValueError)):
        with pytest.raises(error):
            split(sock, fail)
        assert pipe.engine.counts == {"New 1": 2} and [r["image"] for r in sightings(store, session)] == ["New 1"] * 2
        assert [d["name"] for d in rows.load(session)] == ["New 1"]  # rolled back
    split(2)
    assert pipe.engine.counts == {"New 1": 1, "New 2": 1}
    assert [(r["id"], r["image"]) for r in sightings(store, session)] == [(1, "New 1"), (2, "New 2")]
    assert store.session(session)["engine_state"]["counts"] == {"New 1": 1, "New 2": 1}
    loaded = {d["name"]: from_row(d) for d in rows.load(session)}
    assert loaded["New 1"].owners.tolist() == [1, 1] and dict(loaded["New 1"].socks) == {1: b"one"}
    assert loaded["New 2"].owners.tolist() == [2, 2] and dict(loaded["New 2"].socks) == {2: b"two"}
    assert loaded["New 2"].picture == b"two" and loaded["New 1"].picture == b"one"
    new = pipe.reset()
    assert rows.keep_only(new) == 2 and store.conn.execute("select count(*) from design_socks").fetchone()[0] == 0


def _tiny_model(folder):
    from sortcore.classifier import openset
    os.makedirs(folder)
    openset.save_head(folder, ["Github", "Mongo"], frames_of(unit(1), 4, 1).tolist() + frames_of(unit(2), 4, 2).tolist(),
                      [0] * 4 + [1] * 4, {"k": 3, "tau": 0.6, "margin": 0.0, "floor": 0.4})
    with open(os.path.join(folder, "net.onnx"), "wb") as fh:
        fh.write(b"not read here")


def test_the_user_model_is_written_whole_and_switched_atomically(tmp_path):
    from sortcore.classifier import openset, usermodel
    base, user = str(tmp_path / "base"), str(tmp_path / "user")
    _tiny_model(base)
    assert usermodel.model_for(user, base) == base  # none yet: the model given
    first = usermodel.teach(user, base, "Stripy", frames_of(unit(3), 5, 3))
    assert os.path.realpath(first) == os.path.join(user, "v1") and usermodel.model_for(user, base) == first
    usermodel.teach(user, base, "Github", frames_of(unit(1), 2, 4))  # more views of a taught design
    assert sorted(os.listdir(user)) == ["current", "v2"]
    labels = open(os.path.join(user, "current", "labels.txt")).read().split()
    head = openset.load_head(os.path.join(user, "current"), labels)
    assert labels == ["Github", "Mongo", "Stripy"] and len(head.views) == 8 + 5 + 2
    assert json.load(open(os.path.join(user, "current", "calibration.json")))["enrolled"][0]["design"] == "Stripy"
    assert open(os.path.join(base, "labels.txt")).read().split() == ["Github", "Mongo"]  # never changed


def test_the_deeplens_backend_labels_with_the_user_model(monkeypatch, tmp_path):
    """run's DeepLens backend (``model_backend = deeplens``) loads the user model as the other
    backends do: the designs named on the page are taught designs on the camera too. Its net is
    optimized from the deployed files; ``mo`` and ``awscam`` stand in through the adapter's
    imports (only camera/deeplens.py imports them)."""
    import shutil
    import sys
    import types
    from sortcore.classifier import usermodel
    from sortcore.runtime.appliance import _loaders, appliance_config
    from tests.shared import ROOT

    base = tmp_path / "artifacts"
    base.mkdir()
    for name in ("labels.txt", "gallery.npz", "calibration.json"):
        shutil.copy(str(ROOT / "model" / name), str(base / name))
    (base / "sock-symbol.json").write_text("{}")
    (base / "sock-0000.params").write_bytes(b"\0")
    rng = np.random.RandomState(3)
    named = rng.normal(size=1280).astype(np.float32)
    views = named[None, :] + 0.1 * rng.normal(size=(8, 1280)).astype(np.float32)
    user = tmp_path / "user-model"
    usermodel.teach(str(user), str(base), "Blue stripes", views)

    optimized = []
    mo = types.ModuleType("mo")
    mo.optimize = lambda name, w, h, kind, extra: optimized.append((name, extra["--models-dir"])) or (0, "/opt/m.xml")
    awscam = types.ModuleType("awscam")

    class Model(object):
        def __init__(self, path, config):
            self.path = path

        def doInference(self, image):  # the net sees the sock named on the page
            return {"out": named + 0.05 * rng.normal(size=1280).astype(np.float32)}
    awscam.Model = Model
    monkeypatch.setitem(sys.modules, "mo", mo)
    monkeypatch.setitem(sys.modules, "awscam", awscam)

    values = {"model_backend": "deeplens", "model": str(base), "user_model": str(user), "source": "deeplens",
              "db": str(tmp_path / "sortcore.db")}
    config = appliance_config(values, "run", str(base), environ={})
    classifier = _loaders(config)[1]()
    assert optimized == [("sock", str(base))]  # the deployed net, optimized once
    assert "Blue stripes" in classifier.labels
    assert classifier.classify(np.zeros((480, 640, 3), np.uint8)).label == "Blue stripes"
    shutil.rmtree(str(user))  # no user model: the deployed head, which never heard of it
    assert _loaders(config)[1]().classify(np.zeros((480, 640, 3), np.uint8)).label != "Blue stripes"
