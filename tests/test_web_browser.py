"""The status page in a real browser: Debian's chromium driven by Playwright.

One browser for the module, a fresh phone-sized page per test. Set
SORTCORE_WEB_SCREENSHOT=docs/web.png to also write the docs' screenshot.
"""

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

from sortcore.web.live import LiveView
from sortcore.web.server import start_http
from tests.shared import PHOTOS, ROOT
from sortcore.core.frames import Frame
from tests.test_web import T0, TOKEN, Session

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
PHONE = {"width": 390, "height": 844}

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (the test extra)")
expect = sync_api.expect
if not os.access(CHROMIUM, os.X_OK):
    pytest.skip("%s is missing: scripts/setup.sh installs Debian's chromium" % CHROMIUM, allow_module_level=True)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def app(tmp_path):
    """A served LiveView fed by a real Store + Pipeline, reset through the pipeline."""
    holder = {}
    view = LiveView(reset=lambda: holder["session"].reset())
    session = holder["session"] = Session(tmp_path / "web.db", view)
    session.handle = start_http(view, "127.0.0.1", 0, TOKEN)
    yield session
    session.handle.close()
    session.store.close()


@pytest.fixture
def page(browser):
    """A phone-sized page; console errors and page errors fail the test unless it clears them."""
    context = browser.new_context(viewport=PHONE, device_scale_factor=2)
    page = context.new_page()
    page.errors = []
    page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    yield page
    errors = list(page.errors)
    context.close()
    assert errors == []


def row(page, image):
    quoted = image.replace("\\", "\\\\").replace('"', '\\"')  # a CSS string
    return page.locator('#pairs tr[data-image="%s"]' % quoted)


def cell(page, image, field):
    return row(page, image).locator('[data-field="%s"]' % field)


def test_the_page_renders_the_session_and_shows_a_new_sock_live(app, page, tmp_path):
    for image in ["Google", "Mongo", "Google", "Github", "Confluent", "Github", "Streamsets"]:
        app.show(image)
    app.show("Unknown")
    app.status()
    page.goto(app.handle.url)
    expect(cell(page, "Google", "number_socks_seen")).to_have_text("2")
    expect(cell(page, "Google", "pair_seen")).to_have_text("Pair")
    expect(cell(page, "Github", "pairs")).to_have_text("1")
    expect(cell(page, "Mongo", "pair_seen")).to_have_text("Un-matched")
    expect(page.locator("#pairs tbody tr")).to_have_count(5)  # "Unknown" is not a design row
    expect(page.locator("#session")).to_have_text(str(app.pipeline.session))
    expect(page.locator("#odd li")).to_have_text(["Confluent", "Mongo", "Streamsets"])
    expect(page.locator("#unknown")).to_have_text("1")
    expect(page.locator("#sightings li").first).to_contain_text("unrecognised")
    expect(page.locator("#state")).to_have_text("online")
    expect(page.locator("#reason")).to_be_hidden()
    expect(page.locator('[data-status="runtime"]')).to_have_text("serve")
    expect(page.locator('[data-status="broker"]')).to_have_text("none")
    expect(page.locator("#camera")).to_be_hidden()
    expect(page.locator("#link")).to_have_text("live")

    start = time.monotonic()
    app.show("Mongo")
    page.wait_for_function(
        """() => { const c = document.querySelector('#pairs tr[data-image="Mongo"] [data-field="pair_seen"]');
                   return c && c.textContent === "Pair"; }""", polling="raf", timeout=2000)
    shown = time.monotonic() - start
    print("a confirmed sock showed in %.0f ms" % (shown * 1000))
    assert shown < 0.3, "a confirmed sock took %.0f ms to show" % (shown * 1000)
    expect(page.locator("#sightings li").first).to_contain_text("Mongo")
    expect(page.locator("#odd li")).to_have_text(["Confluent", "Streamsets"])
    expect(page.locator("#waiting")).to_have_text("0")

    # Another Mongo 3 s later could still be the same sock: it waits, and the page says so.
    base = T0 + 20.0 * (app.shown - 1) + 3.0
    for k in range(4):
        app.pipeline.feed(Frame("Mongo", 90.0, base + 0.25 * k, "left"))
    app.pipeline.commit()
    app.publish_state()
    expect(page.locator("#waiting")).to_have_text("1")


def test_labels_are_text_never_markup(app, page):
    hostile = '<img src=x onerror="document.title=\'owned\'">'
    app.show(hostile)
    page.goto(app.handle.url)
    expect(cell(page, hostile, "number_socks_seen")).to_have_text("1")
    expect(row(page, hostile).locator("th")).to_have_text(hostile)
    assert page.locator('#pairs img[src="x"]').count() == 0 and page.title() != "owned"


def test_reset_needs_the_token_and_asks_for_it_once(app, page):
    app.show("Google")
    first = app.pipeline.session
    page.goto(app.handle.url)
    expect(cell(page, "Google", "number_socks_seen")).to_have_text("1")
    page.click("#reset")
    page.fill("#token", "wrong-token")
    page.click("#reset-confirm")
    expect(page.locator("#reset-msg")).to_have_text("Wrong token: not reset.")
    assert app.pipeline.session == first
    assert any("401" in e for e in page.errors)  # the browser logs the refused request
    page.errors.clear()

    page.fill("#token", TOKEN)
    page.click("#reset-confirm")
    expect(page.locator("#reset-msg")).to_have_text("Session %d started." % (first + 1))
    expect(page.locator("#session")).to_have_text(str(first + 1))
    expect(page.locator("#pairs tbody tr")).to_have_count(0)
    assert app.store.session()["id"] == first + 1

    page.click("#reset")  # the token is kept for this tab: only a confirmation now
    expect(page.locator("#token")).to_be_hidden()
    page.click("#reset-confirm")
    expect(page.locator("#session")).to_have_text(str(first + 2))


def test_the_camera_shows_only_with_a_camera_and_the_page_reconnects(app, page):
    page.goto(app.handle.url)
    expect(page.locator("#link")).to_have_text("live")
    expect(page.locator("#camera")).to_be_hidden()
    photos = sorted(PHOTOS.glob("*/*.jpg"))
    app.view.frame(photos[0].read_bytes() if photos else page.screenshot(type="jpeg"))
    app.status(camera="deeplens")
    expect(page.locator("#camera")).to_be_visible()
    page.wait_for_function("() => document.getElementById('camera-img').naturalWidth > 0")
    app.status(camera="deeplens", problem="SourceError: camera unplugged")  # the core's own reason
    expect(page.locator("#state")).to_have_text("degraded")
    expect(page.locator("#reason")).to_have_text("SourceError: camera unplugged")

    port = app.handle.port
    app.handle.close()  # the service vanishes without a word
    expect(page.locator("#link")).to_have_text("reconnecting…")
    expect(page.locator("#state")).to_have_text("unreachable")
    expect(page.locator("#reason")).to_contain_text("no answer from the service since")
    expect(page.locator("#camera-off")).to_have_text("No connection to the service: the camera view is paused.")
    assert page.locator("#camera-img").get_attribute("src") is None  # not a frozen frame
    app.handle = start_http(app.view, "127.0.0.1", port, TOKEN)
    app.show("Databricks")
    expect(cell(page, "Databricks", "number_socks_seen")).to_have_text("1", timeout=10000)
    expect(page.locator("#link")).to_have_text("live")
    expect(page.locator("#state")).to_have_text("degraded")
    # the service stopped on purpose: the page's next requests are refused, or reset when the
    # process exits with one in flight (seen about once in four runs on a loaded machine)
    page.errors[:] = [e for e in page.errors if "ERR_CONNECTION_REFUSED" not in e and "ERR_CONNECTION_RESET" not in e]


def photo_loop(folder):
    """Symlinks (never copies) to the shared photos: each design's two photos twice, design
    after design, so a looping folder source shows each design as one sock per pass."""
    folder.mkdir()
    for number, design in enumerate(sorted(d for d in PHOTOS.iterdir() if d.is_dir())):
        for k, photo in enumerate(sorted(design.glob("*.jpg")) * 2):
            (folder / ("%02d-%s-%d.jpg" % (number, design.name, k))).symlink_to(photo)
    return folder


def start_run(tmp_path, args=None):
    """``sortcore run --http 127.0.0.1:0`` on the shipped model; returns (process, page URL)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    args = args or ["--source", "folder:%s?loop" % photo_loop(tmp_path / "photos"), "--fps", "20", "--min-frames", "2",
                    "--gap", "0.5"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "sortcore", "run"] + args + ["--status-interval", "0.2",
                                                            "--db", str(tmp_path / "run.db"), "--http", "127.0.0.1:0"],
        env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, universal_newlines=True)
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stderr] + [lines.put("")], daemon=True).start()
    while True:
        line = lines.get(timeout=60)
        assert line, "sortcore run ended before serving its page (exit %s)" % proc.wait()
        found = re.search(r"status page on (http://\S+/)", line)
        if found:
            return proc, found.group(1)


@pytest.mark.model
@pytest.mark.skipif(not PHOTOS.exists(), reason="../shared/sock-photos is not beside the repository")
def test_a_real_run_on_a_phone_pictures_dark_mode_and_a_clean_stop(browser, page, tmp_path):
    """The real CLI and model: the badge is the runtime's own status, each row gets its
    design's picture from the camera, the pairs come before the camera, and a stop shows
    as offline with no frozen frame."""
    pytest.importorskip("cv2")
    proc, url = start_run(tmp_path)
    try:
        page.goto(url)
        expect(page.locator("#state")).to_have_text("online", timeout=30000)
        expect(page.locator("#pairs tbody tr")).to_have_count(6, timeout=20000)
        page.wait_for_function("""() => { const imgs = [...document.querySelectorAll('#pairs td.pic img')];
            return imgs.length === 6 && imgs.every(i => i.complete && i.naturalWidth === 96); }""", timeout=10000)
        expect(page.locator("#camera-img")).to_be_visible()
        tops = [page.locator(sel).bounding_box()["y"] for sel in ("#pairs", "#odd", "#camera")]
        assert tops == sorted(tops), "pairs, then odd socks, then the camera"
        installable = page.context.new_cdp_session(page).send("Page.getInstallabilityErrors")
        assert {e["errorId"] for e in installable["installabilityErrors"]} <= {"in-incognito"}
        if os.environ.get("SORTCORE_WEB_SCREENSHOT"):  # the docs' picture: with pairs and odd socks
            page.wait_for_function("""() => +document.getElementById('total-pairs').textContent >= 3
                && document.querySelectorAll('#odd li').length >= 1""", polling="raf", timeout=20000)
            page.screenshot(path=os.environ["SORTCORE_WEB_SCREENSHOT"])  # a phone's first screen

        dark = browser.new_context(viewport=PHONE, color_scheme="dark")
        try:
            night = dark.new_page()
            night.goto(url)
            expect(night.locator("#state")).to_have_text("online")
            assert night.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(17, 19, 24)"
        finally:
            dark.close()

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        expect(page.locator("#state")).to_have_text("offline")
        expect(page.locator("#reason")).to_contain_text("stopped at")
        expect(page.locator("#camera-off")).to_have_text("The camera stopped with the service.")
        assert page.locator("#camera-img").get_attribute("src") is None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # the service stopped on purpose: the page's next requests are refused, or reset when the
    # process exits with one in flight (seen about once in four runs on a loaded machine)
    page.errors[:] = [e for e in page.errors if "ERR_CONNECTION_REFUSED" not in e and "ERR_CONNECTION_RESET" not in e]


@pytest.mark.model
@pytest.mark.skipif(not PHOTOS.exists(), reason="../shared/sock-photos is not beside the repository")
def test_a_new_design_shows_its_picture_and_is_named_on_the_page(page, tmp_path):
    """The real CLI and model: a sock nobody taught, held up again and again, becomes a row
    marked new with a picture of its crop; the person names it with the token, and the row
    follows under its name, still marked new for this session; then says it is not a sock, and
    the row goes. Before that, one of its socks is told apart ("Not this design", as for a false
    pair) and becomes a row of its own."""
    pytest.importorskip("cv2")
    from tests.videos import untaught_sock, write_frames

    write_frames(tmp_path / "loop", [untaught_sock("X", 0)])
    (tmp_path / "token").write_text(TOKEN)
    proc, url = start_run(tmp_path, ["--source", "folder:%s?loop" % (tmp_path / "loop"), "--fps", "10",
                                     "--http-token-file", str(tmp_path / "token")])
    try:
        page.goto(url)
        new = row(page, "New 1")
        expect(new).to_have_class(re.compile(r"\bnew\b"), timeout=60000)
        expect(new.locator(".badge")).to_have_text("new")
        page.wait_for_function("""() => { const i = document.querySelector('#pairs tr[data-image="New 1"] td.pic img');
            return i && i.complete && i.naturalWidth > 0 && i.naturalWidth <= 128; }""", timeout=20000)
        page.wait_for_function("""() => { const c = document.querySelector(
            '#pairs tr[data-image="New 1"] [data-field="number_socks_seen"]'); return c && +c.textContent >= 3; }""",
                               timeout=60000)
        new.locator("button.name").click()
        expect(page.locator("#design-box")).to_be_visible()
        expect(page.locator("#design-label")).to_have_text("New 1")
        page.fill("#design-token", TOKEN)
        first = page.locator("#design-socks li").first  # the oldest sock: put down long ago
        expect(first.locator("img")).to_be_visible(timeout=20000)
        first.locator("button.split").click()
        expect(row(page, "New 2")).to_have_class(re.compile(r"\bnew\b"), timeout=20000)
        expect(page.locator("#design-box")).to_be_hidden()
        new.locator("button.name").click()  # the token is remembered for the session's tab
        page.fill("#design-name", "Polka <b>dots</b>")
        page.click("#design-save")
        named = row(page, "Polka <b>dots</b>")
        expect(named).to_have_class(re.compile(r"\bnew\b"), timeout=20000)
        expect(page.locator("#design-box")).to_be_hidden()
        expect(row(page, "New 1")).to_have_count(0)
        assert page.locator("#pairs b").count() == 0  # a name is text, never markup
        named.locator("button.name").click()  # the person changes their mind: not a sock after all
        page.click("#design-forget")  # the token is remembered for the session's tab
        expect(named).to_have_count(0, timeout=20000)
        expect(page.locator("#design-box")).to_be_hidden()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # the service stopped on purpose: the page's next requests are refused, or reset when the
    # process exits with one in flight (seen about once in four runs on a loaded machine)
    page.errors[:] = [e for e in page.errors if "ERR_CONNECTION_REFUSED" not in e and "ERR_CONNECTION_RESET" not in e]
    labels = (tmp_path / "user-model" / "current" / "labels.txt").read_text().split("\n")
    assert "Polka <b>dots</b>" in labels
