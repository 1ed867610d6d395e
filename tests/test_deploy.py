"""deploy/: the Greengrass v1 definitions and the Kafka/ksqlDB files, checked by parsing.

Nothing here talks to AWS, Kafka Connect or ksqlDB (none run in this
environment); the tests hold the files to the code: topics, handler, the
environment the lambda reads, the JSON the lambda publishes.
"""

import json
import re
import shutil
import subprocess

import pytest

from sortcore.core import messages
from sortcore.core.engine import PairsRow, SockConfirmed
from sortcore.devtools.package import HANDLER
from tests.shared import ROOT, import_lambda_handler

GG = ROOT / "deploy" / "greengrass"
KAFKA = ROOT / "deploy" / "kafka"
PLACEHOLDER = "@FUNCTION_ARN@"


def load(path):
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def function():
    functions = load(GG / "function-definition.json")["InitialVersion"]["Functions"]
    assert len(functions) == 1
    return functions[0]


@pytest.fixture(scope="module")
def resources():
    return load(GG / "resource-definition.json")["InitialVersion"]["Resources"]


def test_function_is_pinned_with_json_events_and_sysfs(function):
    assert function["FunctionArn"] == PLACEHOLDER
    config = function["FunctionConfiguration"]
    assert config["Pinned"] is True  # long-lived: the loop starts on import
    assert config["EncodingType"] == "json"  # control messages arrive as dicts
    assert isinstance(config["MemorySize"], int) and config["MemorySize"] >= 512 * 1024  # KB; MXNet
    assert isinstance(config["Timeout"], int) and 0 < config["Timeout"] <= 900
    assert config["Environment"]["AccessSysfs"] is True


def test_function_environment_is_what_the_lambda_reads(function):
    from sortcore.core import settings

    variables = function["FunctionConfiguration"]["Environment"]["Variables"]
    assert all(isinstance(v, str) for v in variables.values())
    handler = import_lambda_handler()
    assert set(variables) <= {s.envvar("lambda") for s in settings.for_command("lambda")}
    assert variables["SORTCORE_LAMBDA_AUTOSTART"] == "1"
    config = handler.config_from_env(variables)  # valid as shipped
    assert config.db.startswith("/sortcore-data/") and config.topic_prefix == ""
    assert config.broker is None and config.greengrass is True


def test_resource_access_matches_the_resource_definition(function, resources):
    policies = function["FunctionConfiguration"]["Environment"]["ResourceAccessPolicies"]
    by_id = {r["Id"]: r for r in resources}
    assert len(by_id) == len(resources)
    assert {p["ResourceId"] for p in policies} == set(by_id)
    assert all(p["Permission"] in ("ro", "rw") for p in policies)
    for resource in resources:
        assert re.fullmatch(r"[a-zA-Z0-9:_-]{1,128}", resource["Id"])
        assert re.fullmatch(r"[a-zA-Z0-9:_-]{1,128}", resource["Name"])
        (kind, data), = resource["ResourceDataContainer"].items()
        assert kind in ("LocalDeviceResourceData", "LocalVolumeResourceData")
        if kind == "LocalDeviceResourceData":
            assert data["SourcePath"].startswith("/dev/")
        else:
            assert not data["SourcePath"].startswith(("/sys", "/dev", "/var"))
            assert data["DestinationPath"].startswith("/")
    sources = {r["ResourceDataContainer"].get("LocalDeviceResourceData", {}).get("SourcePath") for r in resources}
    assert "/dev/dri/renderD128" in sources  # the DeepLens GPU
    volumes = {r["ResourceDataContainer"]["LocalVolumeResourceData"]["DestinationPath"]: r["Id"]
               for r in resources if "LocalVolumeResourceData" in r["ResourceDataContainer"]}
    assert "/opt/awscam/out" in volumes
    permission = {p["ResourceId"]: p["Permission"] for p in policies}
    assert permission[volumes["/sortcore-data"]] == "rw"  # the SQLite store lives there


def test_subscriptions_route_results_out_and_control_in():
    subscriptions = load(GG / "subscription-definition.json")["InitialVersion"]["Subscriptions"]
    assert len({s["Id"] for s in subscriptions}) == len(subscriptions)
    out = {s["Subject"] for s in subscriptions if s["Source"] == PLACEHOLDER and s["Target"] == "cloud"}
    assert out == {messages.TOPIC_FRAMES, messages.TOPIC_PAIRS, messages.TOPIC_STATE, messages.TOPIC_STATUS}
    inbound = [(s["Source"], s["Subject"]) for s in subscriptions if s["Target"] == PLACEHOLDER]
    assert inbound == [("cloud", messages.TOPIC_CONTROL)]


def test_deploy_script_runs_the_whole_cli_sequence():
    script = (GG / "deploy.sh").read_text()
    assert subprocess.run(["bash", "-n", str(GG / "deploy.sh")]).returncode == 0
    assert "set -euo pipefail" in script
    for command in ("lambda create-function", "lambda publish-version", "create-alias",
                    "greengrass create-function-definition", "greengrass create-subscription-definition",
                    "greengrass create-resource-definition", "greengrass create-group-version",
                    "greengrass create-deployment"):
        assert command in script, command
    assert "HANDLER=%s" % HANDLER in script and "RUNTIME=python3.7" in script
    for name in re.findall(r"render ([\w-]+\.json)", script):
        assert (GG / name).is_file()
    assert "s|%s|" % PLACEHOLDER in script


def test_function_name_is_inside_the_deeplens_service_role_policy():
    """AWSDeepLensServiceRolePolicy allows Lambda actions on ``function:deeplens*`` only."""
    script = (GG / "deploy.sh").read_text()
    default = re.search(r"^FUNCTION_NAME=\$\{FUNCTION_NAME:-([\w-]+)\}$", script, re.M).group(1)
    assert default == "deeplens-sortcore"
    assert "deeplens*" in script  # says why, for whoever overrides it


def test_group_version_keeps_every_definition_it_does_not_replace():
    """create-group-version replaces the group's lists: what we do not redeploy must be passed on."""
    script = (GG / "deploy.sh").read_text()
    query = re.search(r"--query '(Definition\.\[[^']*\])'", script).group(1)
    kept = re.findall(r"(\w+)DefinitionVersionArn", query)
    assert set(kept) == {"Core", "Device", "Logger", "Connector"}
    for flag in ("--core-definition-version-arn", "--device-definition-version-arn",
                 "--logger-definition-version-arn", "--connector-definition-version-arn",
                 "--function-definition-version-arn", "--subscription-definition-version-arn",
                 "--resource-definition-version-arn"):
        assert flag in script, flag


def test_data_folder_is_owned_by_ggc_user(resources):
    data = next(r for r in resources if r["Id"] == "sortcore-data")["ResourceDataContainer"]["LocalVolumeResourceData"]
    assert data["GroupOwnerSetting"] == {"AutoAddGroupOwner": False, "GroupOwner": "ggc_group"}
    docs = (ROOT / "docs" / "greengrass.md").read_text()
    assert "install -d -o ggc_user -g ggc_group -m 0770 %s" % data["SourcePath"] in docs


def test_greengrass_v1_docs_say_first_that_they_are_historical():
    head = (ROOT / "docs" / "greengrass.md").read_text().split("\n## ", 1)[0]
    assert "historical" in head.lower() and "7 Oct" in head and "31 Jan 2024" in head
    assert "greengrass-v2.md" in head and "linux.md" in head


# --- Kafka -----------------------------------------------------------------------

def sample_sock_message():
    event = SockConfirmed(7, "Github", "deeplens", 10.0, 10.6, 4, 97.0, PairsRow("Github", 2, "Pair", 1))
    return messages.sock_message(3, event)


def test_confluent_connector_reads_sockpairs_into_kafka():
    config = load(KAFKA / "mqtt-source-confluent.json")["config"]
    assert config["connector.class"] == "io.confluent.connect.mqtt.MqttSourceConnector"
    assert config["mqtt.topics"] == messages.TOPIC_PAIRS and config["kafka.topic"] == "sockpairs"
    assert config["mqtt.qos"] == "1"
    assert config["value.converter"].endswith("ByteArrayConverter")  # JSON bytes kept as they are
    assert all(isinstance(v, str) for v in config.values())
    # At least once: a persistent session. The connector has no client-id key; with clean
    # sessions off it gives each task its own stable client id.
    assert config["mqtt.clean.session.enabled"] == "false" and "mqtt.client.id" not in config


def shipped_broker():
    """(TLS port, ACL users) of deploy/mosquitto."""
    conf = (ROOT / "deploy" / "mosquitto" / "mosquitto.conf").read_text()
    acl = (ROOT / "deploy" / "mosquitto" / "acl").read_text()
    assert re.search(r"^allow_anonymous false$", conf, re.M)
    tls_port = next(line.split()[1] for line in conf.splitlines()
                    if line.startswith("listener ") and len(line.split()) == 2)
    return tls_port, set(re.findall(r"^user (\w+)$", acl, re.M))


SECRET = re.compile(r"^\$\{file:(/etc/kafka-connect/secrets/[\w.-]+):([\w.]+)\}$")


def test_connectors_log_in_over_tls_with_secrets_from_a_config_provider():
    """The shipped broker refuses anonymous clients and plain TCP off loopback."""
    tls_port, users = shipped_broker()
    worker = dict(line.split("=", 1) for line in (KAFKA / "connect-worker.properties").read_text().splitlines()
                  if line and not line.startswith("#"))
    assert worker["config.providers"] == "file"
    assert worker["config.providers.file.class"] == "org.apache.kafka.common.config.provider.FileConfigProvider"
    confluent = load(KAFKA / "mqtt-source-confluent.json")["config"]
    lenses = lenses_properties()
    assert confluent["mqtt.server.uri"] == lenses["connect.mqtt.hosts"] == "ssl://mosquitto:%s" % tls_port
    assert confluent["mqtt.username"] == lenses["connect.mqtt.username"] == "reader" and "reader" in users
    for value in (confluent["mqtt.password"], confluent["mqtt.ssl.trust.store.password"],
                  lenses["connect.mqtt.password"]):
        match = SECRET.match(value)
        assert match and match.group(1).startswith(worker["config.providers.file.param.allowed.paths"])
    assert confluent["mqtt.ssl.trust.store.path"].endswith(".jks")
    assert lenses["connect.mqtt.ssl.ca.cert"].endswith(".crt")


def test_ksqldb_connector_statement_matches_the_json():
    text = (KAFKA / "mqtt-source-connector.ksql").read_text()
    match = re.search(r"CREATE SOURCE CONNECTOR (?:IF NOT EXISTS )?`([\w-]+)` WITH \((.*)\);", text, re.S)
    assert match
    properties = dict(re.findall(r'"([\w.]+)"\s*=\s*\'([^\']*)\'', match.group(2)))
    connector = load(KAFKA / "mqtt-source-confluent.json")
    assert match.group(1) == connector["name"]
    assert properties == connector["config"]


def lenses_properties():
    props = {}
    for line in (KAFKA / "mqtt-source-lenses.properties").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            props[key.strip()] = value.strip()
    return props


def test_lenses_alternative_has_the_same_route():
    props = lenses_properties()
    assert props["connector.class"] == "io.lenses.streamreactor.connect.mqtt.source.MqttSourceConnector"
    assert props["connect.mqtt.clean"] == "false" and props["connect.mqtt.client.id"]
    assert props["connect.mqtt.service.quality"] == "1"
    assert re.match(r"INSERT INTO sockpairs SELECT \* FROM sockpairs WITHCONVERTER=`[\w.]+JsonSimpleConverter`$",
                    props["connect.mqtt.kcql"])


def ksql_statements(text):
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    return [s.strip() for s in code.split(";") if s.strip()]


def test_ksqldb_stream_and_latest_pairs_table():
    statements = ksql_statements((KAFKA / "sockpairs.ksql").read_text())
    stream = next(s for s in statements if s.startswith("CREATE STREAM"))
    columns = re.findall(r"^\s*(\w+) (INT|BIGINT|VARCHAR|DOUBLE),?$", stream, re.M)
    assert {name for name, _ in columns} == set(sample_sock_message())  # every field of the message
    assert "KAFKA_TOPIC='sockpairs'" in stream and "VALUE_FORMAT='JSON'" in stream
    # ksqlDB creates the topic if the connector has not yet, and then needs PARTITIONS.
    assert re.search(r"\bPARTITIONS=1\b", stream)
    table = next(s for s in statements if s.startswith("CREATE TABLE"))
    assert "FROM sockpairs_stream" in table and "KEY_FORMAT='JSON'" in table
    assert re.search(r"GROUP BY session, image\s+EMIT CHANGES$", table)
    latest = re.findall(r"LATEST_BY_OFFSET\((\w+)\) AS (\w+)", table)
    assert {"number_socks_seen", "pair_seen", "pairs"} <= {a for a, b in latest if a == b}


def test_docs_cover_every_lambda_variable(function):
    settings_doc = (ROOT / "docs" / "settings.md").read_text()
    for name in function["FunctionConfiguration"]["Environment"]["Variables"]:
        assert "`%s`" % name in settings_doc or name + "," in settings_doc, name
    docs = (ROOT / "docs" / "greengrass.md").read_text()
    assert "package-lambda" in docs and "deploy.sh" in docs


# --- Plain Linux / Raspberry Pi: deploy/linux -----------------------------------------

LINUX = ROOT / "deploy" / "linux"


def unit_sections(text):
    """{section: [(key, value), ...]} of a systemd unit; keys may repeat (Environment=)."""
    sections, current = {}, None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), [])
        else:
            key, sep, value = line.partition("=")
            assert sep and current is not None, line
            current.append((key, value))
    return sections


def test_systemd_unit_runs_sortcore_run_hardened():
    sections = unit_sections((LINUX / "sortcore.service").read_text())
    service = sections["Service"]
    one = dict(service)
    env = dict(v.split("=", 1) for k, v in service if k == "Environment")
    assert one["ExecStart"] == "/opt/sortcore/venv/bin/sortcore run"
    assert env["SORTCORE_SOURCE"] == "webcam:0" and env["SORTCORE_HTTP"] == "0.0.0.0:8080"
    assert env["SORTCORE_DB"] == "/var/lib/sortcore/sortcore.db"
    keys = [k for k, _ in service]
    assert keys.index("EnvironmentFile") > max(i for i, k in enumerate(keys) if k == "Environment")
    assert one["EnvironmentFile"] == "-/etc/sortcore/sortcore.env"
    assert one["User"] == "sortcore" and "video" in one["SupplementaryGroups"].split()
    assert one["StateDirectory"] == "sortcore" and one["Restart"] == "on-failure"
    # READY=1 and WATCHDOG=1 from the loop (tests/test_systemd.py); the watchdog outlasts a 30 s backoff
    assert one["Type"] == "notify" and one["NotifyAccess"] == "main" and int(one["WatchdogSec"]) >= 60
    for key, value in {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
                       "PrivateTmp": "yes", "DevicePolicy": "closed",
                       "DeviceAllow": "char-video4linux rw", "CapabilityBoundingSet": ""}.items():
        assert one[key] == value, key
    assert "PrivateDevices" not in one  # it would hide /dev/video*
    assert dict(sections["Install"])["WantedBy"] == "multi-user.target"


def test_env_file_names_only_run_options():
    text = (LINUX / "sortcore.env").read_text()
    names = set(re.findall(r"^#?(SORTCORE_[A-Z_]+)=", text, re.M))
    options = {"source", "broker", "username", "password-file", "http", "http-token-file", "db", "model"}
    assert names == {"SORTCORE_" + o.upper().replace("-", "_") for o in options}


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
def test_systemd_analyze_verify_accepts_the_unit(tmp_path):
    """verify exits 0 even on unknown keys, so its stderr must be empty as well."""
    unit = tmp_path / "sortcore.service"
    # verify checks that ExecStart's program exists; it is in /opt only after install.sh
    unit.write_text((LINUX / "sortcore.service").read_text().replace("/opt/sortcore/venv/bin/sortcore", "/bin/true"))
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr
    # the exposure score (0 best, 10 worst; --threshold is in tenths): 1.7 as shipped
    security = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--threshold=20", str(unit)],
                              capture_output=True, text=True, timeout=60)
    assert security.returncode == 0, security.stdout[-600:]


def test_install_script_parses_and_passes_shellcheck():
    script = LINUX / "install.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    text = script.read_text()
    assert "set -euo pipefail" in text and "pip install sortcore" not in text  # not on PyPI
    assert 'SOURCE=${1:-$(cd "$HERE/../.." && pwd)}' in text and 'SPEC="${SOURCE}[onnx]"' in text
    for needed in ("/opt/sortcore/venv", "useradd --system", "--groups video", "sortcore.service",
                   "/etc/sortcore/sortcore.env", "systemctl daemon-reload"):
        assert needed in text, needed
    if not shutil.which("shellcheck"):
        pytest.skip("shellcheck is not installed (apt install shellcheck)")
    for path in (script, GG / "deploy.sh"):
        result = subprocess.run(["shellcheck", str(path)], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout
