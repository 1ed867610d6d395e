"""deploy/mosquitto as installed on Debian: a real mosquitto, Debian's main file, our conf.d file.

The layout is Debian's package: /etc/mosquitto/mosquitto.conf (pid_file,
persistence, persistence_location, log_dest, include_dir /etc/mosquitto/conf.d)
and our file as conf.d/sortcore.conf. Everything is copied into tmp_path with
/etc/mosquitto, /var/lib/mosquitto, /var/log/mosquitto and /run/mosquitto moved
there and the ports 1883/8883 replaced by free ones; nothing else is changed.
Then the users of the README log in over TLS and the ACL is held to what each
user may do.
"""

import os
import re
import subprocess
import sys
import threading
import uuid

import pytest

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from sortcore.devtools.broker import LocalBroker, free_port
from tests.mqtt_util import Collector
from tests.shared import ROOT
from tests.test_mqtt import make_tls

DEPLOY = ROOT / "deploy" / "mosquitto"
# /etc/mosquitto/mosquitto.conf of Debian's mosquitto package (bookworm, 2.0.11), as shipped.
DEBIAN_MAIN = """\
# Place your local configuration in /etc/mosquitto/conf.d/
#
# A full description of the configuration file is at
# /usr/share/doc/mosquitto/examples/mosquitto.conf.example

pid_file /run/mosquitto/mosquitto.pid

persistence true
persistence_location /var/lib/mosquitto/

log_dest file /var/log/mosquitto/mosquitto.log

include_dir /etc/mosquitto/conf.d
"""
USERS = {"camera": "cam-pw", "sortcore": "svc-pw", "appliance": "app-pw", "lambda": "gg-pw", "operator": "op-pw",
         "homeassistant": "ha-pw", "reader": "rd-pw"}


class DebianBroker(LocalBroker):
    """mosquitto started as ``mosquitto -c <root>/etc/mosquitto/mosquitto.conf``."""

    def __init__(self, root, port, tls_port):
        super().__init__(str(root / "work"), port=port)
        self.root, self.tls_port = root, tls_port
        self.log_path = str(root / "var/log/mosquitto/mosquitto.log")
        self.conf_path = str(root / "etc/mosquitto/mosquitto.conf")


def relocate(text, root, port, tls_port):
    for folder in ("/etc/mosquitto/", "/var/lib/mosquitto/", "/var/log/mosquitto/", "/run/mosquitto/"):
        text = text.replace(folder, "%s%s" % (root, folder))
    text = text.replace("include_dir /etc/mosquitto/conf.d", "include_dir %s/etc/mosquitto/conf.d" % root)
    text = re.sub(r"^listener 1883\b", "listener %d" % port, text, flags=re.M)
    return re.sub(r"^listener 8883\b", "listener %d" % tls_port, text, flags=re.M)


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    """One throw-away CA and server certificate for the module (RSA keys take a while)."""
    return make_tls(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def debian(tmp_path, tls):
    if not os.path.exists("/usr/bin/mosquitto_passwd"):
        pytest.skip("mosquitto_passwd (package mosquitto) is not installed")
    root = tmp_path / "root"
    etc = root / "etc/mosquitto"
    for folder in ("etc/mosquitto/conf.d", "etc/mosquitto/certs", "var/lib/mosquitto",
                   "var/log/mosquitto", "run/mosquitto"):
        (root / folder).mkdir(parents=True)
    port = tls_port = free_port()
    while tls_port == port:
        tls_port = free_port()
    main = relocate(DEBIAN_MAIN, root, port, tls_port)
    if os.geteuid() == 0:  # else mosquitto drops to user 'mosquitto', who cannot read tmp_path
        main += "user root\n"
    (etc / "mosquitto.conf").write_text(main)
    (etc / "conf.d/README").write_text("Any files placed in this directory ending in .conf are loaded.\n")
    # As the README says: the file into conf.d, the ACL beside it.
    (etc / "conf.d/sortcore.conf").write_text(relocate((DEPLOY / "mosquitto.conf").read_text(), root, port, tls_port))
    (etc / "sortcore.acl").write_text((DEPLOY / "acl").read_text())
    for name in ("ca.crt", "server.crt", "server.key"):
        (etc / "certs" / name).write_bytes((tls / name).read_bytes())
    passwd = etc / "sortcore.passwd"
    passwd.write_text("")
    for user, password in USERS.items():
        subprocess.run(["mosquitto_passwd", "-b", str(passwd), user, password], check=True, capture_output=True)
    os.chmod(str(passwd), 0o600)
    for conf in (etc / "mosquitto.conf", etc / "conf.d/sortcore.conf"):  # nothing left pointing at the machine's
        lines = [l for l in conf.read_text().splitlines() if l and not l.startswith("#")]
        assert not [l for l in lines if re.search(r"\s/(etc|var|run)/", l)], conf
    broker = DebianBroker(root, port, tls_port)
    broker.start()  # returns once mosquitto logged 'running': after opening both listeners
    broker.ca = str(etc / "certs/ca.crt")
    yield broker
    broker.stop()


class Client:
    """A paho client (MQTT 5) that waits for CONNACK and for each PUBACK, and keeps their reason codes."""

    def __init__(self, broker, user, password, tls=True):
        self.acks = {}
        self.connected = threading.Event()
        self.cond = threading.Condition()
        self.client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5,
                                  client_id="%s-%s" % (user, uuid.uuid4().hex[:6]))
        self.client.username_pw_set(user, password)
        if tls:
            self.client.tls_set(ca_certs=broker.ca)

        def on_connect(client, userdata, flags, reason_code, properties):
            self.reason = reason_code
            self.connected.set()

        def on_publish(client, userdata, mid, reason_code, properties):
            with self.cond:
                self.acks[mid] = reason_code
                self.cond.notify_all()

        self.client.on_connect = on_connect
        self.client.on_publish = on_publish
        self.client.connect("127.0.0.1", broker.tls_port if tls else broker.port, 30)
        self.client.loop_start()
        assert self.connected.wait(10), "no CONNACK"

    def publish(self, topic, payload=b"x"):
        """'accepted' (PUBACK 0x00 or 0x10 'No matching subscribers') or the refusal, e.g. 'Not authorized'."""
        info = self.client.publish(topic, payload, qos=1)
        with self.cond:
            assert self.cond.wait_for(lambda: info.mid in self.acks, 10), "no PUBACK"
            code = self.acks[info.mid]
            return str(code) if code.is_failure else "accepted"

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def test_debian_layout_starts_and_takes_tls_with_passwords(debian):
    assert "Error" not in debian.log()
    with Collector(("127.0.0.1", debian.tls_port), ["sockpairs/#"], username="reader", password="rd-pw",
                   tls_ca=debian.ca) as seen:
        service = Client(debian, "sortcore", "svc-pw")
        try:
            assert not service.reason.is_failure
            assert service.publish("sockpairs", b"{}") == "accepted"
        finally:
            service.close()
        assert seen.wait(1) == [b"{}"]
    wrong = Client(debian, "reader", "nope")
    assert wrong.reason.is_failure
    wrong.close()


def test_loopback_listener_needs_a_password_too(debian):
    anonymous = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    refused = threading.Event()
    anonymous.on_connect = lambda c, u, f, reason_code, p: reason_code.is_failure and refused.set()
    anonymous.connect("127.0.0.1", debian.port, 30)
    anonymous.loop_start()
    try:
        assert refused.wait(10)
    finally:
        anonymous.loop_stop()
    local = Client(debian, "camera", "cam-pw", tls=False)
    assert local.publish("sockfound", b"{}") == "accepted"
    local.close()


HA_CONFIGS = ["homeassistant/sensor/sortcore_cam/pairs/config", "homeassistant/button/sortcore_cam/new_session/config"]
RIGHTS = {
    # user: (topics it may publish, topics it may not)
    "lambda": (["sockfound", "sockfound/deeplens", "sockpairs", "sockpairs/state", "sockpairs/status"] + HA_CONFIGS,
               ["sockpairs/control", "sockpairs/other", "elsewhere", "homeassistant/switch/x/y/config"]),
    "sortcore": (["sockpairs", "sockpairs/state", "sockpairs/status"] + HA_CONFIGS,
                 ["sockpairs/control", "sockfound", "homeassistant/status"]),
    "appliance": (["sockfound", "sockfound/cam1", "sockpairs", "sockpairs/state", "sockpairs/status"] + HA_CONFIGS,
                  ["sockpairs/control", "sockpairs/other", "homeassistant/switch/x/y/config"]),
    "camera": (["sockfound", "sockfound/cam1"], ["sockpairs", "sockpairs/control"] + HA_CONFIGS),
    "operator": (["sockpairs/control"], ["sockpairs", "sockfound"]),
    "homeassistant": (["sockpairs/control", "homeassistant/status"], ["sockpairs", "sockfound"] + HA_CONFIGS),
    "reader": ([], ["sockpairs", "sockpairs/control", "sockfound"]),
}


@pytest.mark.parametrize("user", sorted(RIGHTS))
def test_acl_gives_each_user_exactly_its_rights(debian, user):
    allowed, denied = RIGHTS[user]
    client = Client(debian, user, USERS[user])
    try:
        for topic in allowed:
            assert client.publish(topic) == "accepted", (user, topic)
        for topic in denied:
            assert client.publish(topic) == "Not authorized", (user, topic)
    finally:
        client.close()


def test_lambda_link_reads_control_and_only_the_operator_resets(debian):
    with Collector(("127.0.0.1", debian.tls_port), ["sockpairs/control"], username="lambda", password="gg-pw",
                   tls_ca=debian.ca) as lam:
        operator = Client(debian, "operator", "op-pw")
        try:
            assert operator.publish("sockpairs/control", b'{"cmd": "reset"}') == "accepted"
        finally:
            operator.close()
        assert lam.wait(1, "sockpairs/control") == [b'{"cmd": "reset"}']


def test_mosquitto_sub_as_docs_watching_says(debian, tmp_path):
    """docs/watching.md: the options from ~/.config/mosquitto_sub, then the short command."""
    service = Client(debian, "sortcore", "svc-pw")
    try:  # retained, so the subscriber gets it whenever it subscribes
        service.client.publish("sockpairs/state", b'{"pairs": 1}', qos=1, retain=True).wait_for_publish(10)
    finally:
        service.close()
    config = tmp_path / "xdg" / "mosquitto_sub"
    config.parent.mkdir()
    config.write_text("-h 127.0.0.1\n-p %d\n--cafile %s\n-u reader\n-P rd-pw\n" % (debian.tls_port, debian.ca))
    env = dict(os.environ, XDG_CONFIG_HOME=str(config.parent))
    docs = (ROOT / "docs" / "watching.md").read_text()
    assert "mosquitto_sub -q 1 -t 'sockpairs/#' -v" in docs
    out = subprocess.run(["mosquitto_sub", "-q", "1", "-t", "sockpairs/#", "-v", "-C", "1", "-W", "10"],
                         env=env, capture_output=True, timeout=20)
    assert out.stdout == b'sockpairs/state {"pairs": 1}\n', out.stderr


# --- `sortcore run` against the shipped ACL: no silent loss --------------------------------

def appliance_loop(debian, tmp_path, user):
    """The camera loop of ``run`` (camera 'cam', label frames at 20 fps) logged in as ``user``
    on the loopback listener, with the links ``run`` makes from its settings."""
    from sortcore.core.engine import EngineConfig
    from sortcore.store.pipeline import Pipeline
    from sortcore.runtime.appliance import appliance_config, links_for
    from sortcore.runtime.device import DeviceLoop
    from sortcore.store.database import Store
    from tests.test_device import LabelClassifier

    pw = tmp_path / ("%s.pw" % user)
    pw.write_text(USERS[user] + "\n")
    values = {"broker": "mqtt://127.0.0.1:%d" % debian.port, "username": user, "password_file": str(pw),
              "camera": "cam", "status_interval": 0.1, "heartbeat": 0, "ha_discovery": True,
              "source": "labels", "db": str(tmp_path / "run.db"), "fps": 20}
    config = appliance_config(values, "run", model=str(tmp_path))

    def frames():
        while True:
            yield "Google"

    class Source(list):
        name = "labels"
        close = list.clear

        def __iter__(self):
            return frames()

    loop = DeviceLoop(Source, LabelClassifier, lambda: Pipeline(Store(str(tmp_path / "run.db")), EngineConfig()),
                      links_for(config), config.device, runtime="run")
    thread = threading.Thread(target=loop.run)
    thread.start()
    return loop, thread


def stopped(loop, thread):
    loop.stop.set()
    thread.join(30)
    assert not thread.is_alive()


def test_run_as_a_user_who_may_not_publish_frames_counts_each_refused_frame(debian, tmp_path, caplog):
    """The issue: `run --username sortcore` published 0 of 211 frames and said denied: 0."""
    with Collector(("127.0.0.1", debian.port), ["sockpairs/status"], username="reader", password="rd-pw") as seen:
        loop, thread = appliance_loop(debian, tmp_path, "sortcore")
        try:
            status = seen.wait_for(lambda s: s["status"] == "degraded" and (s["denied"] or 0) >= 5,
                                   "sockpairs/status", 30)
        finally:
            stopped(loop, thread)
        final = seen.wait_for(lambda s: s["status"] == "offline", "sockpairs/status", 10)
    assert "refused sockfound: Not authorized" in status["reason"], status
    assert final["frames"] == loop.frames and final["denied"] == loop.frames, (final, loop.frames)
    warned = [r.getMessage() for r in caplog.records if "refused sockfound" in r.getMessage()]
    assert len(warned) == 1 and "logged once per topic" in warned[0], warned
    assert final["socks"] >= 1  # counting goes on: only the frames' copies on the broker are refused


def test_run_as_appliance_publishes_every_frame_and_takes_the_home_assistant_button(debian, tmp_path):
    frames = Collector(("127.0.0.1", debian.port), ["sockfound"], username="sortcore", password="svc-pw")
    ha = Collector(("127.0.0.1", debian.port), ["homeassistant/#", "sockpairs/state", "sockpairs/status"],
                   username="homeassistant", password="ha-pw")
    try:
        loop, thread = appliance_loop(debian, tmp_path, "appliance")
        try:
            first = ha.wait_for(lambda s: isinstance(s, dict) and s.get("socks"), "sockpairs/state", 30)
            button = ha.wait_json(1, "homeassistant/button/sortcore_cam/new_session/config")[0]
            press = Client(debian, "homeassistant", "ha-pw", tls=False)
            try:
                assert press.publish(button["command_topic"], button["payload_press"].encode()) == "accepted"
            finally:
                press.close()
            ha.wait_for(lambda s: s["session"] == first["session"] + 1, "sockpairs/state", 30)
        finally:
            stopped(loop, thread)
        final = ha.wait_for(lambda s: s["status"] == "offline", "sockpairs/status", 10)
        assert len(frames.wait(loop.frames, "sockfound", timeout=20)) == loop.frames
        assert final["denied"] == 0 and final["resets"] == 1 and final["frames"] == loop.frames, final
        assert len([t for t, p, r in ha.messages if t.endswith("/config")]) == 8
    finally:
        frames.close()
        ha.close()


@pytest.mark.model
def test_the_run_command_says_how_many_frames_the_acl_refused(debian, tmp_path):
    pytest.importorskip("onnxruntime")
    from tests.shared import PHOTOS

    if not PHOTOS.exists():
        pytest.skip("../shared/sock-photos is not beside the repository")
    pw = tmp_path / "svc.pw"
    pw.write_text("svc-pw\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with Collector(("127.0.0.1", debian.port), ["sockpairs/status"], username="reader", password="rd-pw") as seen:
        done = subprocess.run([sys.executable, "-m", "sortcore", "run", "--source", "folder:%s" % PHOTOS, "--fps", "0",
                               "--db", str(tmp_path / "run.db"), "--broker", "mqtt://127.0.0.1:%d" % debian.port,
                               "--username", "sortcore", "--password-file", str(pw)],
                              env=env, capture_output=True, text=True, timeout=120)
        final = seen.wait_for(lambda s: s["status"] == "offline", "sockpairs/status", 10)
    assert done.returncode == 0, done.stderr
    assert final["frames"] == 12 and final["denied"] == 12, final
    refused = [line for line in done.stderr.splitlines() if "refused sockfound" in line]
    assert len(refused) == 1 and "Not authorized" in refused[0], done.stderr
