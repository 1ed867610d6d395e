"""Shared fixtures: a real mosquitto on a free loopback port (never a mock), a real SQLite
store in tmp_path, a clock moved by hand. Tests that use a broker are marked ``broker``.

``pytest --fast`` (``make fast``) is the fast loop: the modules that need the classifier's
libraries, a browser or a mosquitto of their own are not even collected (so MXNet, OpenCV and
ONNX Runtime are never imported), and the tests marked broker, browser, model or slow, or
listed in :data:`LONG`, are deselected. What is left is engine, store, frames, settings,
replay, runtime core, page and layout. CI (``make test``) runs everything, as before."""

import pytest

from sortcore.store.database import Store
from tests.clock import FakeClock
from tests.disk import mount_small_disk, unmount
from tests.mqtt_util import Broker

BROKER_FIXTURES = {"mosquitto", "broker_factory"}
BROKER_MODULES = {"test_demo.py", "test_deploy_mosquitto.py"}  # they start their own mosquitto
BROWSER_MODULES = {"test_web_browser.py"}
#: OpenCV (frames drawn, videos written) without the model
OPENCV_MODULES = {"test_newdesigns.py", "test_videoout.py"}
#: the classifier's tests: they load MXNet, train small nets, export ONNX
MODEL_MODULES = {"test_model.py", "test_training.py", "test_openset.py", "test_enroll.py", "test_count.py",
                 "test_onnx.py", "test_sources.py", "test_watch.py", "test_run.py", "test_install.py",
                 "test_mxnet.py", "test_newdesigns_run.py"}
#: the fast loop's own cut, by name (each of its parameters too): hypothesis runs of 100-200
#: examples, tests that start ``python -m sortcore`` (or sqlite-utils) in a subprocess or mount
#: a file system, and timeouts waited out. Every name must exist (checked when ``--fast`` runs
#: the whole suite). CI runs them all.
LONG = {
    "test_event_time.py": {  # hypothesis; the example tests of event time stay
        "test_any_permutation_within_the_allowance_counts_as_the_sorted_stream",
        "test_disordered_replay_restored_from_its_changed_cameras_equals_one_pass",
        "test_wall_clock_ticks_never_change_a_count", "test_in_any_order_whatever_is_not_late_counts_exactly",
        "test_silences_and_evictions_never_count_a_sock_twice"},
    "test_logbatch.py": {"test_bad_lines_among_good_ones_keep_their_place", "test_lines_around_the_length_limit",
                         "test_a_long_line_of_spaces_is_blank_and_a_huge_one_is_bounded",
                         "test_any_lines_of_json_fragments_decode_the_same"},
    "test_faults.py": {  # subprocesses
        "test_a_corrupt_store_is_one_clear_line_in_every_command", "test_not_a_database_is_a_clear_line",
        "test_a_second_long_running_writer_is_refused_naming_the_holder",
        "test_disk_full_is_store_full_and_the_batch_retries", "test_replay_refuses_a_fifo_at_once",
        "test_replay_refuses_a_device", "test_os_errors_are_one_line"},
    "test_store_files.py": {"test_read_only_commands_create_no_folder_and_no_file",
                            "test_a_store_on_a_read_only_mount_is_read",
                            "test_a_store_path_under_a_regular_file_is_one_line"},
    "test_store_cli.py": {"test_the_documented_commands_agree_with_sortcore_pairs",
                          "test_the_page_names_every_table_and_view_of_a_store"},
    "test_store.py": {"test_views_read_with_the_sqlite_utils_cli"},
    "test_startup.py": {"test_importing_is_light", "test_a_replay_into_a_new_store_is_light"},
    "test_web.py": {"test_sortcore_token_writes_a_good_private_token_once",
                    "test_connections_beyond_the_cap_get_503_at_once_and_slow_headers_are_cut"},
    "test_systemd.py": {"test_a_hung_loop_stops_the_watchdog_and_a_live_one_resumes_it"},
    "test_docs.py": {"test_the_fast_loop_imports_no_classifier_library_and_keeps_the_core_tests"},
}
#: the page's HTTP server per test: closing it waits out its 0.2 s poll (a few tests that start
#: one themselves stay in the fast loop)
SERVER_FIXTURES = {"served"}
#: the lambda zip and the v2 component: built from the exported network (build/eye)
BUILD_MODULES = {"test_package.py", "test_greengrass_v2.py"}
FAST_SKIPS = MODEL_MODULES | BROWSER_MODULES | BROKER_MODULES | OPENCV_MODULES | BUILD_MODULES


def pytest_addoption(parser):
    parser.addoption("--fast", action="store_true",
                     help="the fast loop: no MXNet, OpenCV, ONNX Runtime, browser, broker or long test")


def pytest_ignore_collect(collection_path, config):
    if config.getoption("fast") and collection_path.name in FAST_SKIPS:
        return True
    return None


def _long(item):
    module = item.path.name if hasattr(item, "path") else item.fspath.basename
    return (getattr(item, "originalname", None) in LONG.get(module, ())
            or bool(SERVER_FIXTURES & set(getattr(item, "fixturenames", ()))))


def _fast_selection(config, items):
    keep = [item for item in items if not _long(item) and not any(
        item.get_closest_marker(m) for m in ("broker", "browser", "model", "slow"))]
    sources = getattr(pytest.Config, "ArgsSource", None)  # pytest >= 7.2
    if sources is not None and config.args_source == sources.TESTPATHS:  # the whole suite
        collected = {(item.path.name, item.originalname) for item in items}
        stale = sorted("%s::%s" % (m, n) for m, names in LONG.items() for n in names if (m, n) not in collected)
        if stale:
            raise pytest.UsageError("tests/conftest.py LONG names tests that do not exist: %s" % ", ".join(stale))
    config.hook.pytest_deselected(items=[item for item in items if item not in keep])
    items[:] = keep


def pytest_collection_modifyitems(config, items):
    for item in items:
        module = item.path.name if hasattr(item, "path") else item.fspath.basename
        if BROKER_FIXTURES & set(getattr(item, "fixturenames", ())) or module in BROKER_MODULES:
            item.add_marker(pytest.mark.broker)
        if module in BROWSER_MODULES:
            item.add_marker(pytest.mark.browser)
        if module in MODEL_MODULES:
            item.add_marker(pytest.mark.model)
    if config.getoption("fast"):
        _fast_selection(config, items)


@pytest.fixture
def store(tmp_path):
    """A real SQLite store in tmp_path, closed at the end."""
    opened = Store(str(tmp_path / "sortcore.db"))
    yield opened
    opened.close()


@pytest.fixture
def fake_clock():
    return FakeClock()


@pytest.fixture
def mosquitto(tmp_path):
    """A started mosquitto: ``.host .port .url .stop() .start() .kill()``."""
    broker = Broker(tmp_path / "mosquitto").start()
    yield broker
    broker.stop()


@pytest.fixture
def broker_factory(tmp_path):
    """Make brokers with extra config (TLS, passwords, ACL); all stopped at the end."""
    made = []

    def make(extra=(), tls=False, name="broker"):
        broker = Broker(tmp_path / name, extra=extra, tls=tls)
        made.append(broker)
        return broker

    yield make
    for broker in made:
        broker.stop()


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MB tmpfs to fill (root only; the test is skipped where it cannot be mounted)."""
    where = mount_small_disk(tmp_path / "small")
    yield where
    unmount(where)
