"""Conformance: Microsoft's Azure IoT device SDK for Node.js, unmodified from npm (versions in
tests/sdk/node/package-lock.json), against `tether cloud`. Each test states a behaviour of
Azure DPS and IoT Hub that a device built on the SDK relies on.

The device side is tests/sdk/node/driver.js (the SDK's public API, driven over stdin/stdout);
the service side is `tether cloud` commands. The SDK trusts the cloud's CA through
NODE_EXTRA_CA_CERTS and dials Azure's ports (8883, 443), which the driver's tls.connect sends
to the cloud's free ports on 127.0.0.1 keeping the host name (SNI, certificate check).
"""
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "cloud"))
from conftest import Cloud, derive_key  # noqa: E402  (the local cloud's test harness)

NODE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "node")
DRIVER = os.path.join(NODE_DIR, "driver.js")
# The global DPS endpoint the official samples hard-code (the cloud's certificate names it).
DPS_HOST = os.environ.get("TETHER_SDK_DPS_HOST", "global.azure-devices-provisioning.net")
TRANSPORTS = ["mqtt", "ws"]


@pytest.fixture
def cloud():
    if not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "azure-iot-device")):
        pytest.fail("the Node SDK is not installed: run scripts/setup (npm ci in tests/sdk/node)")
    tmp = tempfile.mkdtemp(prefix="tether-sdk-node-")
    c = Cloud(tmp)
    c.nodes = []
    try:
        c.up("--retry-after", "1")
        yield c
    finally:
        for n in c.nodes:
            n.stop()
        c.down()
        pid = c.pid()
        if pid:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        if not os.environ.get("TETHER_KEEP"):
            shutil.rmtree(tmp, ignore_errors=True)


class Node:
    """One Node.js process holding SDK clients (DPS and hub connections)."""

    def __init__(self, cloud):
        env = dict(os.environ, NODE_EXTRA_CA_CERTS=cloud.ca, TETHER_CLOUD_PORT=str(cloud.port),
                   TETHER_CLOUD_WS_PORT=str(cloud.ws_port))
        self.p = subprocess.Popen(["node", DRIVER], cwd=NODE_DIR, env=env, text=True,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, bufsize=1)
        self.answers = {}
        self.events = []
        self.cond = threading.Condition()
        self.next_id = 1
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        cloud.nodes.append(self)
        self.cloud = cloud

    def _read(self):
        for line in self.p.stdout:
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            with self.cond:
                if "id" in msg:
                    self.answers[msg["id"]] = msg
                else:
                    self.events.append(msg)
                self.cond.notify_all()

    def try_call(self, op, timeout=60, **kw):
        with self.cond:
            rid = self.next_id
            self.next_id += 1
        self.p.stdin.write(json.dumps(dict(kw, id=rid, op=op)) + "\n")
        self.p.stdin.flush()
        with self.cond:
            self.cond.wait_for(lambda: rid in self.answers, timeout=timeout)
            return self.answers.pop(rid, {"error": f"{op}: no answer in {timeout} s"})

    def call(self, op, timeout=60, **kw):
        r = self.try_call(op, timeout=timeout, **kw)
        assert "error" not in r, f"{op} failed: {r}"
        return r

    def event(self, kind, timeout=20, name=None, where=lambda e: True):
        """The first event of this kind (and where(event)) not yet taken, or None."""
        def find():
            for e in self.events:
                if e["event"] == kind and (name is None or e.get("name") == name) and where(e):
                    return e
            return None
        with self.cond:
            self.cond.wait_for(lambda: find() is not None, timeout=timeout)
            e = find()
            if e is not None:
                self.events.remove(e)
            return e

    def count(self, kind, name=None):
        with self.cond:
            return sum(1 for e in self.events
                       if e["event"] == kind and (name is None or e.get("name") == name))

    def stop(self):
        if self.p.poll() is None:
            self.p.stdin.close()
            try:
                self.p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.p.kill()


# ---- credentials as an operator makes them --------------------------------------------

def x509_individual(cloud, reg):
    dev = cloud.pki_device(reg)
    cloud.cli("enrollment", "create", "--registration-id", reg, "--attestation", "x509",
              "--cert", dev["certificate"])
    return {"attestation": "x509", "cert": dev["certificate"], "key": dev["key"]}


def x509_group(cloud, reg):
    """A group whose CA is the intermediate; the device sends its chain (leaf + intermediate)."""
    pki = os.path.join(cloud.dir, "pki")
    cloud.cli("enrollment-group", "create", "--group-id", "x509-group", "--attestation", "x509",
              "--ca", os.path.join(pki, "intermediate.pem"))
    dev = cloud.pki_device(reg)
    return {"attestation": "x509", "cert": dev["chain"], "key": dev["key"]}


def sas_individual(cloud, reg):
    e = cloud.cli_json("enrollment", "create", "--registration-id", reg)
    return {"attestation": "sas", "symmetricKey": e["attestation"]["symmetricKey"]["primaryKey"]}


def sas_group(cloud, reg):
    """A symmetric-key group: the device holds HMAC-SHA256(group key, registration id)."""
    g = cloud.cli_json("enrollment-group", "create", "--group-id", f"sas-group-{reg}",
                       "--attestation", "symmetric-key")
    key = g["attestation"]["symmetricKey"]["primaryKey"]
    return {"attestation": "sas", "symmetricKey": derive_key(key, reg)}


ATTESTATIONS = {"x509-individual": x509_individual, "x509-group": x509_group,
                "sas-individual": sas_individual, "sas-group": sas_group}


def provision(node, cloud, reg, creds, transport="mqtt", **kw):
    r = node.call("provision", registrationId=reg, idScope=cloud.scope, dpsHost=DPS_HOST,
                  transport=transport, **creds, **kw)
    return r["result"]


def connect(node, cloud, reg, creds, transport="mqtt", hub=None, name=None, **kw):
    name = name or reg
    node.call("connect", name=name, hub=hub or cloud.hub, deviceId=reg, transport=transport,
              **creds, **kw)
    return name


def monitor(cloud, device, count):
    p = cloud.cli("monitor", "--device", device, "--all", "--count", str(count), "--timeout",
                  "15", "--json")
    return [json.loads(line) for line in p.stdout.splitlines()]


def ready_device(cloud, node, reg, transport="mqtt", attestation="sas-individual", **kw):
    creds = ATTESTATIONS[attestation](cloud, reg)
    result = provision(node, cloud, reg, creds, transport)
    name = connect(node, cloud, reg, creds, transport, hub=result["assignedHub"], **kw)
    return name, creds, result


# ---- DPS -------------------------------------------------------------------------------

@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("attestation", list(ATTESTATIONS))
def test_dps_assigns_a_hub_to_every_attestation_and_the_device_connects_there(cloud, attestation,
                                                                              transport):
    node = Node(cloud)
    reg = f"{attestation}-{transport}"
    creds = ATTESTATIONS[attestation](cloud, reg)
    result = provision(node, cloud, reg, creds, transport)
    assert result["status"] == "assigned"
    assert result["assignedHub"] == cloud.hub
    assert result["deviceId"] == reg
    assert result["substatus"] == "initialAssignment"
    # the hub knows the device with the same credentials, over the same transport
    connect(node, cloud, reg, creds, transport, hub=result["assignedHub"])
    node.call("send", name=reg, data=f"hello from {attestation} over {transport}")
    assert monitor(cloud, reg, 1)[0]["payload"] == f"hello from {attestation} over {transport}"
    node.call("close", name=reg)
    # DPS and the hub's regular host name speak TLS 1.2 only (the SDK offers 1.2 and 1.3)
    port = 443 if transport == "ws" else 8883
    assert node.call("handshakes")["handshakes"] == [
        {"host": DPS_HOST, "port": port, "protocol": "TLSv1.2"},
        {"host": result["assignedHub"], "port": port, "protocol": "TLSv1.2"}]


def test_dps_refuses_a_device_it_has_no_enrollment_for(cloud):
    node = Node(cloud)
    r = node.try_call("provision", registrationId="stranger", idScope=cloud.scope,
                      dpsHost=DPS_HOST, transport="mqtt", attestation="sas",
                      symmetricKey=derive_key("c2VjcmV0", "stranger"))
    assert "error" in r and r["name"] == "UnauthorizedError", r


def test_dps_returns_no_payload_without_custom_allocation(cloud):
    node = Node(cloud)
    creds = sas_individual(cloud, "with-payload")
    result = provision(node, cloud, "with-payload", creds, payload={"modelId": "dtmi:x:y;1"})
    assert result["status"] == "assigned"
    assert "payload" not in result


def test_the_global_dps_endpoint_name_of_the_samples_is_served(cloud):
    node = Node(cloud)
    creds = sas_individual(cloud, "global-name")
    r = node.call("provision", registrationId="global-name", idScope=cloud.scope,
                  dpsHost="global.azure-devices-provisioning.net", transport="mqtt", **creds)
    assert r["result"]["status"] == "assigned"


# ---- IoT Hub ---------------------------------------------------------------------------

def test_telemetry_carries_application_and_system_properties(cloud):
    node = Node(cloud)
    name, _, _ = ready_device(cloud, node, "tele")
    node.call("send", name=name, data=json.dumps({"t": 21.5}),
              properties={"unit": "C", "alert level": "high/1"}, messageId="m-1",
              contentType="application/json", contentEncoding="utf-8")
    m = monitor(cloud, "tele", 1)[0]
    assert json.loads(m["payload"]) == {"t": 21.5}
    assert m["properties"] == {"unit": "C", "alert level": "high/1", "$.mid": "m-1",
                               "$.ct": "application/json", "$.ce": "utf-8"}


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_c2d_reaches_an_online_device_and_a_queued_one_once(cloud, transport):
    node = Node(cloud)
    name, creds, result = ready_device(cloud, node, "c2d", transport)
    cloud.cli("c2d", "send", "c2d", "while online", "--props", "color=red")
    m = node.event("c2d", name=name)
    assert m is not None and m["data"] == "while online"
    assert m["properties"].get("color") == "red"
    time.sleep(1)  # a device that stays connected (a short-lived one: see below)
    node.call("close", name=name)
    cloud.cli("c2d", "send", "c2d", "while offline")
    connect(node, cloud, "c2d", creds, transport, hub=result["assignedHub"])
    m = node.event("c2d", name=name)
    assert m is not None and m["data"] == "while offline"
    time.sleep(1)
    node.call("close", name=name)
    # completed: a new connection gets nothing again
    connect(node, cloud, "c2d", creds, transport, hub=result["assignedHub"])
    assert node.event("c2d", name=name, timeout=3) is None
    node.call("close", name=name)


def test_c2d_acknowledged_by_a_short_lived_client_is_not_delivered_again(cloud):
    node = Node(cloud)
    creds = sas_individual(cloud, "short")
    result = provision(node, cloud, "short", creds)
    cloud.cli("c2d", "send", "short", "once only")
    for run in range(2):
        connect(node, cloud, "short", creds, hub=result["assignedHub"])
        m = node.event("c2d", name="short", timeout=5 if run == 0 else 3)
        node.call("close", name="short")  # at once, as a short-lived client does
        if run == 0:
            assert m is not None and m["data"] == "once only"
        else:
            assert m is None, "the completed message came again"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_twin_get_reported_and_desired(cloud, transport):
    node = Node(cloud)
    name, _, _ = ready_device(cloud, node, "twin", transport)
    cloud.cli("twin", "update", "twin", "--desired", '{"interval": 5}')
    t = node.call("twin", name=name)
    assert t["desired"]["interval"] == 5 and t["desired"]["$version"] >= 2
    node.call("report", name=name, patch={"firmware": "1.2.3"})
    shown = cloud.cli_json("twin", "show", "twin")
    assert shown["properties"]["reported"]["firmware"] == "1.2.3"
    # the SDK hands over the whole desired section when it subscribes, then each patch
    first = node.event("desired", name=name)
    assert first is not None and first["patch"]["interval"] == 5
    cloud.cli("twin", "update", "twin", "--desired", '{"interval": 10}')
    e = node.event("desired", name=name, where=lambda e: e["patch"].get("interval") == 10)
    assert e is not None and e["patch"]["$version"] == 3
    node.call("close", name=name)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_direct_method_is_answered_by_the_device(cloud, transport):
    node = Node(cloud)
    name, _, _ = ready_device(cloud, node, "meth", transport, methods=["reboot"])
    # The SDK subscribes to methods in the background after onDeviceMethod (no callback): until
    # its SUBSCRIBE lands, IoT Hub answers 404 / 404103, as the cloud does. Ask again, bounded.
    for _ in range(50):
        out = cloud.cli_json("method", "invoke", "meth", "reboot", "--payload", '{"delay": 1}',
                             "--timeout", "10", check=False)
        if out.get("errorCode") != 404103:
            break
        time.sleep(0.1)
    assert out["status"] == 200
    assert out["payload"] == {"echo": {"delay": 1}, "method": "reboot"}
    e = node.event("method", name=name)
    assert e["method"] == "reboot" and e["payload"] == {"delay": 1}
    node.call("close", name=name)


def connections(cloud, device):
    """Hub connections the broker accepted for device, from its log."""
    with open(os.path.join(cloud.dir, "mosquitto.log"), errors="replace") as f:
        return sum(1 for line in f if f" as {device} (" in line and "/?api-version" in line)


def everything_works(cloud, node, name, device, step):
    """C2D, a desired patch and a method call all reach the device."""
    cloud.cli("c2d", "send", device, f"c2d {step}")
    m = node.event("c2d", name=name)
    assert m is not None and m["data"] == f"c2d {step}", f"no C2D message after {step}"
    cloud.cli("twin", "update", device, "--desired", json.dumps({"step": step}))
    e = node.event("desired", name=name, where=lambda e: e["patch"].get("step") == step)
    assert e is not None, f"no desired patch after {step}"
    out = cloud.cli_json("method", "invoke", device, "ping", "--timeout", "10")
    assert out["status"] == 200, f"no method call after {step}: {out}"
    node.call("send", name=name, data=f"telemetry {step}")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_after_a_network_blip_the_sdk_reconnects_and_everything_works(cloud, transport):
    node = Node(cloud)
    name, _, _ = ready_device(cloud, node, "blip", transport, methods=["ping"])
    node.call("twin", name=name)
    everything_works(cloud, node, name, "blip", "before")
    assert node.event("connect", name=name) is not None  # the first connection
    assert node.call("blip", hub=cloud.hub)["cut"] >= 1
    # the SDK reconnects by itself (clean session 0, sessionPresent 1, no new SUBSCRIBE)
    assert node.event("connect", name=name, timeout=60) is not None
    everything_works(cloud, node, name, "blip", "after")


def test_after_a_sas_token_renewal_everything_works(cloud):
    node = Node(cloud)
    # renew every 10 s instead of every 45 minutes: each renewal is a new connection
    name, _, _ = ready_device(cloud, node, "renew", methods=["ping"], tokenValidSeconds=40,
                              tokenMarginSeconds=30)
    node.call("twin", name=name)
    everything_works(cloud, node, name, "renew", "before")
    assert connections(cloud, "renew") == 1
    assert node.event("token", name=name, timeout=30) is not None
    # the SDK reconnects with the new token (clean session 0, no new SUBSCRIBE); only the
    # broker sees it: the SDK emits no event
    end = time.time() + 30
    while connections(cloud, "renew") < 2 and time.time() < end:
        time.sleep(0.2)
    assert connections(cloud, "renew") == 2
    everything_works(cloud, node, name, "renew", "after")


def test_a_dps_registration_leaves_the_hub_connection_alone(cloud):
    node = Node(cloud)
    name, creds, _ = ready_device(cloud, node, "both", methods=["ping"])
    node.call("twin", name=name)
    result = provision(node, cloud, "both", creds)
    assert result["status"] == "assigned"
    assert result["substatus"] == "reprovisionedToInitialAssignment"
    time.sleep(1)
    assert node.count("disconnect", name=name) == 0
    everything_works(cloud, node, name, "both", "after registration")
