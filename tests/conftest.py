"""Shared fixtures: a real mosquitto on a free loopback port (never a mock), a real SQLite
store in tmp_path, a clock moved by hand. Tests that use a broker are marked ``broker``, so
``pytest -m "not broker and not browser and not model and not slow"`` is the fast loop."""

import pytest

from sortcore.store.database import Store
from tests.clock import FakeClock
from tests.disk import mount_small_disk, unmount
from tests.mqtt_util import Broker

BROKER_FIXTURES = {"mosquitto", "broker_factory"}
BROKER_MODULES = {"test_demo.py", "test_deploy_mosquitto.py"}  # they start their own mosquitto
BROWSER_MODULES = {"test_web_browser.py"}
#: the classifier's tests: they load MXNet, train small nets, export ONNX
MODEL_MODULES = {"test_model.py", "test_training.py", "test_openset.py", "test_enroll.py", "test_count.py",
                 "test_onnx.py", "test_sources.py", "test_watch.py", "test_run.py", "test_install.py",
                 "test_mxnet.py", "test_newdesigns_run.py"}


def pytest_collection_modifyitems(items):
    for item in items:
        module = item.path.name if hasattr(item, "path") else item.fspath.basename
        if BROKER_FIXTURES & set(getattr(item, "fixturenames", ())) or module in BROKER_MODULES:
            item.add_marker(pytest.mark.broker)
        if module in BROWSER_MODULES:
            item.add_marker(pytest.mark.browser)
        if module in MODEL_MODULES:
            item.add_marker(pytest.mark.model)


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
