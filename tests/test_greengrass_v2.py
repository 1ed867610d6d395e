"""Greengrass v2: the recipe and gdk-config keys, the component artifact, the IPC publisher.

Nothing here talks to AWS or a Greengrass nucleus (none exist in this
environment). The recipe and gdk-config.json are held to the keys of AWS's
component recipe reference and the GDK CLI's config schema; the publisher runs
against a fake IPC client with the method signatures of awsiotsdk's
``GreengrassCoreIPCClientV2`` (1.31.0); awsiotsdk need not be installed.
"""

import json
import os
import re
import subprocess
import sys
import zipfile

import pytest

yaml = pytest.importorskip("yaml")  # PyYAML: the test extra

from sortcore import __version__
from sortcore.core import messages
from sortcore.adapters.greengrass import GreengrassUnavailable
from sortcore.adapters.greengrass_v2 import GreengrassV2Publisher, connect_greengrass_v2
from sortcore.devtools.component import ARTIFACT, UNPACKED, build_component
from sortcore.core.errors import MqttError
from tests.shared import ROOT

GG2 = ROOT / "deploy" / "greengrass-v2"
RECIPE_KEYS = {"RecipeFormatVersion", "ComponentName", "ComponentVersion", "ComponentDescription",
               "ComponentPublisher", "ComponentConfiguration", "ComponentDependencies", "ComponentType",
               "ComponentSource", "Manifests", "Lifecycle"}
LIFECYCLE_KEYS = {"Setenv", "Bootstrap", "Install", "Startup", "Run", "Shutdown", "Recover"}
STEP_KEYS = {"Script", "RequiresPrivilege", "Skipif", "Timeout", "Setenv"}
ARTIFACT_KEYS = {"Uri", "Unarchive", "Permission", "Digest", "Algorithm"}
RUN_ENV = {"SORTCORE_" + o for o in ("SOURCE", "BROKER", "HTTP", "HTTP_TOKEN_FILE", "DB", "MODEL")}


@pytest.fixture(scope="module")
def recipe():
    return yaml.safe_load((GG2 / "recipe.yaml").read_text())


@pytest.fixture(scope="module")
def gdk():
    return json.loads((GG2 / "gdk-config.json").read_text())


def test_recipe_has_only_documented_keys(recipe):
    assert set(recipe) <= RECIPE_KEYS
    assert recipe["RecipeFormatVersion"] == "2020-01-25"
    assert re.fullmatch(r"[a-zA-Z0-9-_.]{1,128}", recipe["ComponentName"])
    assert recipe["ComponentVersion"] == __version__  # the artifact is this sortcore
    for dep in recipe["ComponentDependencies"].values():
        assert set(dep) <= {"VersionRequirement", "DependencyType"} and dep["DependencyType"] in ("SOFT", "HARD")
    (manifest,) = recipe["Manifests"]
    assert set(manifest) <= {"Name", "Platform", "Lifecycle", "Selections", "Artifacts"}
    assert manifest["Platform"] == {"os": "linux"}
    assert set(manifest["Lifecycle"]) <= LIFECYCLE_KEYS
    for step in ("Install", "Run"):
        assert set(manifest["Lifecycle"][step]) <= STEP_KEYS
    (artifact,) = manifest["Artifacts"]
    assert set(artifact) <= ARTIFACT_KEYS and artifact["Unarchive"] == "ZIP"
    assert set(artifact["Permission"].values()) <= {"NONE", "OWNER", "ALL"}
    # gdk publish fills in BUCKET_NAME, COMPONENT_NAME and COMPONENT_VERSION
    assert artifact["Uri"] == "s3://BUCKET_NAME/COMPONENT_NAME/COMPONENT_VERSION/" + ARTIFACT


def test_lifecycle_runs_sortcore_run_from_a_venv_with_the_configuration(recipe):
    config = recipe["ComponentConfiguration"]["DefaultConfiguration"]
    lifecycle = recipe["Manifests"][0]["Lifecycle"]
    run = lifecycle["Run"]["Script"]
    exported = dict(re.findall(r'(SORTCORE_\w+)="([^"]*)"', run))
    assert set(exported) == RUN_ENV - {"SORTCORE_HTTP_TOKEN_FILE"}
    used = set(re.findall(r"\{configuration:/(\w+)\}", json.dumps(lifecycle)))
    assert used == {k for k in config if k != "accessControl"} == {"source", "http", "broker"}
    assert exported["SORTCORE_SOURCE"] == "{configuration:/source}"
    assert exported["SORTCORE_DB"] == "{work:path}/sortcore.db"
    assert exported["SORTCORE_MODEL"] == "{artifacts:decompressedPath}/%s/model" % UNPACKED
    install = lifecycle["Install"]["Script"]
    assert "{artifacts:decompressedPath}/%s" % UNPACKED in install and "python3 -m venv {work:path}/venv" in install
    assert "[onnx,greengrass-v2]" in install and isinstance(lifecycle["Install"]["Timeout"], int)
    assert lifecycle["Run"]["Script"].rstrip().endswith("exec {work:path}/venv/bin/sortcore run")
    assert 'export SORTCORE_BROKER="{configuration:/broker}"' in lifecycle["Run"]["Script"]
    assert not lifecycle["Install"].get("RequiresPrivilege")  # no root needed


def test_access_control_allows_exactly_the_topics_sortcore_publishes(recipe):
    acl = recipe["ComponentConfiguration"]["DefaultConfiguration"]["accessControl"]
    published = {messages.TOPIC_FRAMES, messages.TOPIC_PAIRS, messages.TOPIC_STATE, messages.TOPIC_STATUS}
    expected = {"aws.greengrass.ipc.mqttproxy": "aws.greengrass#PublishToIoTCore",
                "aws.greengrass.ipc.pubsub": "aws.greengrass#PublishToTopic"}
    assert set(acl) == set(expected)
    for service, operation in expected.items():
        (name, policy), = acl[service].items()
        assert name.startswith(recipe["ComponentName"] + ":")
        assert set(policy) == {"policyDescription", "operations", "resources"}
        assert policy["operations"] == [operation] and set(policy["resources"]) == published


def test_gdk_config_matches_the_schema_and_the_recipe(gdk, recipe):
    assert set(gdk) == {"component", "gdk_version"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", gdk["gdk_version"])
    (name, component), = gdk["component"].items()
    assert name == recipe["ComponentName"] and component["version"] == recipe["ComponentVersion"]
    assert set(component) == {"author", "version", "build", "publish"}
    assert component["build"]["build_system"] == "custom"
    command = " ".join(component["build"]["custom_build_command"])
    assert "sortcore package-component --root ../.. --out greengrass-build/artifacts/%s/%s" % (
        name, component["version"]) in command
    assert "greengrass-build/recipes/" in command
    assert set(component["publish"]) == {"bucket", "region"}


def test_deployment_runs_the_component_in_group_video(recipe):
    deployment = json.loads((GG2 / "deployment.json").read_text())
    component = deployment["components"][recipe["ComponentName"]]
    assert component["componentVersion"] == recipe["ComponentVersion"]
    assert component["runWith"]["posixUser"].endswith(":video")
    merge = json.loads(component["configurationUpdate"]["merge"])
    assert set(merge) <= set(recipe["ComponentConfiguration"]["DefaultConfiguration"])


# --- the artifact ------------------------------------------------------------

def unarchive(artifact, decompressed):
    """What the nucleus does with ``Unarchive: ZIP`` (AWS's component recipe reference): it
    extracts each archive into a folder with the archive's name under
    ``{artifacts:decompressedPath}``: sortcore-component.zip -> <decompressed>/sortcore-component/."""
    stem = os.path.basename(artifact)[: -len(".zip")]
    with zipfile.ZipFile(artifact) as archive:
        archive.extractall(str(decompressed / stem))
    return decompressed / stem


def test_component_artifact_is_reproducible_and_a_buildable_project(tmp_path):
    first = build_component(str(tmp_path / "a"))
    second = build_component(str(tmp_path / "b"))
    with open(first.path, "rb") as a, open(second.path, "rb") as b:
        assert a.read() == b.read() and first.sha256 == second.sha256
    shipped = sorted(p.name for p in (ROOT / "model").iterdir())
    with zipfile.ZipFile(first.path) as archive:
        names = archive.namelist()
        assert names == sorted(names)
        assert {"setup.py", "setup.cfg", "pyproject.toml", "sortcore/cli/device.py",
                "sortcore/adapters/greengrass_v2.py"} <= set(names)
        assert {"model/" + name for name in shipped} <= set(names)  # every file, the .onnx too
        assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
        manifest = json.loads(archive.read("sortcore-component.json"))
        assert manifest["sortcore"] == __version__ and manifest["model"] == shipped
    tree = unarchive(first.path, tmp_path / "decompressed")
    # pip builds a wheel from it, offline (the device's Install step does the same, with deps),
    # and the wheel carries the model as package data
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                             "--wheel-dir", str(tmp_path / "wheel"), str(tree)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = [p for p in os.listdir(str(tmp_path / "wheel")) if p.startswith("sortcore-%s-" % __version__)]
    with zipfile.ZipFile(str(tmp_path / "wheel" / wheel)) as built:
        assert {"sortcore/model/" + name for name in shipped} <= set(built.namelist())


def test_every_path_the_lifecycle_names_is_in_the_unpacked_component(recipe, tmp_path):
    """Unpacked as the nucleus unpacks it, the component holds each path the recipe's
    scripts name under {artifacts:decompressedPath}, and its model classifies a photo."""
    pytest.importorskip("onnxruntime")
    tree = unarchive(build_component(str(tmp_path / "out")).path, tmp_path / "decompressed")
    lifecycle = json.dumps(recipe["Manifests"][0]["Lifecycle"])
    named = set(re.findall(r"\{artifacts:decompressedPath\}/([\w./-]+)", lifecycle))
    assert named == {UNPACKED, UNPACKED + "/model"}
    for rel in named:
        assert (tmp_path / "decompressed" / rel).is_dir(), rel
    assert (tree / "setup.py").is_file() and (tree / "sortcore" / "__init__.py").is_file()
    photo = next(iter(sorted((ROOT.parent / "shared" / "sock-photos").glob("*/*.jpg"))), None)
    if photo is None:
        pytest.skip("shared photos not found")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-m", "sortcore", "classify", str(photo), "--json",
                           "--runtime", "onnx", "--model", str(tree / "model")],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)
    assert row["image"] in (photo.parent.name, "Unknown")


def test_package_component_command(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, "-m", "sortcore", "package-component", "--out", str(tmp_path)],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / ARTIFACT).is_file() and "sha256" in result.stdout
    bad = subprocess.run([sys.executable, "-m", "sortcore", "package-component", "--out", str(tmp_path),
                          "--model", str(tmp_path / "nope")], capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr and "nope" in bad.stderr


# --- the IPC publisher against a fake client -----------------------------------

class FakeIPC:
    """The two publish calls and close() of awsiotsdk's GreengrassCoreIPCClientV2 (keyword-only)."""

    def __init__(self, fail=None):
        self.calls, self.fail, self.closed = [], fail, 0

    def publish_to_iot_core(self, *, topic_name=None, qos=None, payload=None, retain=None, user_properties=None,
                            message_expiry_interval_seconds=None, correlation_data=None, response_topic=None,
                            payload_format=None, content_type=None):
        if self.fail:
            raise self.fail
        self.calls.append(("iotcore", topic_name, qos, payload, retain))

    def publish_to_topic(self, *, topic=None, publish_message=None):
        if self.fail:
            raise self.fail
        self.calls.append(("local", topic, publish_message))

    def close(self, *, executor_wait=True):
        self.closed += 1


class UnauthorizedError(RuntimeError):
    """Stands in for awsiot.greengrasscoreipc.model.UnauthorizedError (a RuntimeError too)."""


def test_publishes_to_iot_core_with_qos_and_retain():
    fake = FakeIPC()
    made = []
    publisher = GreengrassV2Publisher("iotcore", client_factory=lambda: made.append(1) or fake)
    publisher.publish("sockpairs", '{"pairs": 1}')
    publisher.publish("sockpairs/state", b"{}", qos=0, retain=True)
    assert fake.calls == [("iotcore", "sockpairs", "1", b'{"pairs": 1}', False),
                          ("iotcore", "sockpairs/state", "0", b"{}", True)]
    assert made == [1]  # one client, made on first use
    publisher.close()
    publisher.close()
    assert fake.closed == 1


def test_publishes_locally_as_a_binary_message():
    fake = FakeIPC()
    publisher = GreengrassV2Publisher("local", client_factory=lambda: fake, message_factory=lambda p: ("binary", p))
    publisher.publish("sockpairs", "é", retain=True)  # the local bus has no retain: ignored
    assert fake.calls == [("local", "sockpairs", ("binary", "é".encode("utf-8")))]


def test_sdk_errors_become_mqtt_errors_and_the_next_publish_retries():
    fake = FakeIPC(fail=UnauthorizedError("not authorized to perform PublishToIoTCore on sockpairs"))
    publisher = GreengrassV2Publisher(client_factory=lambda: fake)
    with pytest.raises(MqttError) as err:
        publisher.publish("sockpairs", b"{}")
    assert "UnauthorizedError" in err.value.reason and "sockpairs" in err.value.reason
    fake.fail = None
    publisher.publish("sockpairs", b"{}")
    assert len(fake.calls) == 1


def test_bad_target_or_qos_is_a_clear_error():
    with pytest.raises(MqttError):
        GreengrassV2Publisher("cloud")
    with pytest.raises(MqttError):
        GreengrassV2Publisher(client_factory=FakeIPC).publish("sockpairs", b"{}", qos=2)


def test_outside_greengrass_it_says_so(monkeypatch):
    monkeypatch.setitem(sys.modules, "awsiot", None)  # awsiotsdk not importable
    with pytest.raises(GreengrassUnavailable) as err:
        connect_greengrass_v2()
    assert "awsiotsdk" in err.value.reason


def render(script, work, artifacts, config):
    """What the nucleus runs: recipe variables filled in."""
    script = script.replace("{work:path}", str(work)).replace("{artifacts:decompressedPath}", str(artifacts))
    return re.sub(r"\{configuration:/(\w+)\}", lambda m: config[m.group(1)], script)


@pytest.mark.parametrize("broker", ["greengrass-v2:local", ""])
def test_run_script_passes_the_configuration_to_sortcore_run(recipe, tmp_path, broker):
    """The nucleus runs lifecycle scripts with sh; a stub sortcore prints what it was given."""
    lifecycle = recipe["Manifests"][0]["Lifecycle"]
    work, artifacts = tmp_path / "work", tmp_path / "artifacts"
    (work / "venv" / "bin").mkdir(parents=True)
    stub = work / "venv" / "bin" / "sortcore"
    stub.write_text("#!/bin/sh\necho \"$@\"\nenv | grep '^SORTCORE_' | sort\n")
    stub.chmod(0o755)
    config = dict(recipe["ComponentConfiguration"]["DefaultConfiguration"], source="webcam:/dev/video2",
                  broker=broker)
    assert subprocess.run(["sh", "-n", "-c", render(lifecycle["Install"]["Script"], work, artifacts, config)]
                          ).returncode == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith("SORTCORE_")}
    out = subprocess.run(["sh", "-c", render(lifecycle["Run"]["Script"], work, artifacts, config)],
                         capture_output=True, text=True, env=env, timeout=30)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "run"
    expected = {"SORTCORE_SOURCE": "webcam:/dev/video2", "SORTCORE_HTTP": "127.0.0.1:8080",
                "SORTCORE_DB": "%s/sortcore.db" % work, "SORTCORE_MODEL": "%s/%s/model" % (artifacts, UNPACKED)}
    if broker:
        expected["SORTCORE_BROKER"] = broker
    assert dict(line.split("=", 1) for line in lines[1:]) == expected


def test_run_links_to_the_component_ipc_when_the_recipe_says_so():
    from sortcore.runtime.appliance import appliance_config, links_for

    def links(**values):
        return links_for(appliance_config(dict(values, source="webcam:0", db="x.db"), "run", model="m"))

    (link,) = links(broker="greengrass-v2:iotcore")
    assert link.name == "greengrass-v2"
    assert links(broker=None) == []
