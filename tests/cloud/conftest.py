"""Black-box tests of the local cloud: each test starts `tether cloud up` (tether-cloud) in a
temporary directory on a free port and drives it with Eclipse Paho over TLS.

Host names: DPS is reached as `localhost`, a hub by its name, e.g. the cloud's default hub
`tether-<id scope's hex digits>.localhost` (Cloud.hub, read from `cloud up --json`). Paho 1.6.1
connects to `self._host` and uses it for SNI and certificate checks; TetherClient overrides
`_create_socket_connection` so the TCP connection always goes to 127.0.0.1 while SNI, the
certificate's host name check and the username keep the name (the devices' --connect-to).
"""
import base64
import hashlib
import hmac
import json
import os
import queue
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.parse
import uuid

import paho.mqtt.client as mqtt
import pytest

BUILD = os.environ.get("TETHER_BUILD", os.path.join(os.path.dirname(__file__), "../../build"))
TOOL = os.path.join(BUILD, "tether-cloud")
DPS_API = "2021-06-01"
HUB_API = "2021-04-12"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(*args, check=True, timeout=60):
    """Run `tether-cloud ARGS`; returns CompletedProcess (text)."""
    p = subprocess.run([TOOL, *args], capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"{args} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return p


def sas_token(resource, key_b64, expiry=None, skn=None, lower_escapes=False):
    expiry = int(time.time()) + 3600 if expiry is None else expiry
    sr = urllib.parse.quote(resource, safe="")
    if lower_escapes:
        sr = sr.replace("%2F", "%2f")
    to_sign = f"{sr}\n{expiry}".encode()
    sig = base64.b64encode(hmac.new(base64.b64decode(key_b64), to_sign, hashlib.sha256).digest())
    tok = f"SharedAccessSignature sr={sr}&sig={urllib.parse.quote(sig.decode(), safe='')}&se={expiry}"
    if skn:
        tok += f"&skn={skn}"
    return tok


def derive_key(group_key_b64, registration_id):
    return base64.b64encode(
        hmac.new(base64.b64decode(group_key_b64), registration_id.encode(), hashlib.sha256).digest()
    ).decode()


class TetherClient(mqtt.Client):
    """Paho client that dials 127.0.0.1 but keeps the host name for SNI and checks."""

    def __init__(self, *a, dial_port=None, **kw):
        super().__init__(*a, **kw)
        self._dial_port = dial_port

    def _create_socket_connection(self):
        sock = socket.create_connection(("127.0.0.1", self._dial_port), timeout=self._keepalive)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock


class Device:
    """One MQTT connection with a message queue."""

    def __init__(self, cloud, client_id, username, password=None, cert=None, key=None,
                 host="localhost", clean=True, ws=False):
        self.messages = queue.Queue()
        self.connack = queue.Queue()
        self.disconnects = queue.Queue()
        self.subacks = {}
        # ws: MQTT over WebSockets, wss://host:ws_port/$iothub/websocket (subprotocol mqtt)
        self.c = TetherClient(client_id=client_id, clean_session=clean, protocol=mqtt.MQTTv311,
                              dial_port=cloud.ws_port if ws else cloud.port,
                              transport="websockets" if ws else "tcp")
        if ws:
            self.c.ws_set_options(path="/$iothub/websocket")
        ctx = ssl.create_default_context(cafile=cloud.ca)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if cert:
            ctx.load_cert_chain(cert, key)
        self.c.tls_set_context(ctx)
        self.c.username_pw_set(username, password)
        self.c.on_connect = lambda c, u, f, rc: self.connack.put(rc)
        self.c.on_message = lambda c, u, m: self.messages.put(m)
        self.c.on_disconnect = lambda c, u, rc: self.disconnects.put(rc)
        self.c.on_subscribe = lambda c, u, mid, granted: self.subacks.__setitem__(mid, granted)
        self.host = host
        self.rc = None

    def connect(self, timeout=10):
        try:
            self.c.connect(self.host, self.c._dial_port, keepalive=60)
        except (ssl.SSLError, OSError) as e:
            self.rc = e
            return e
        self.c.loop_start()
        try:
            self.rc = self.connack.get(timeout=timeout)
        except queue.Empty:
            self.rc = "timeout"
        return self.rc

    def subscribe(self, topic, qos=1, timeout=5):
        rc, mid = self.c.subscribe(topic, qos)
        end = time.time() + timeout
        while mid not in self.subacks and time.time() < end:
            time.sleep(0.002)
        return self.subacks.get(mid)

    def publish(self, topic, payload=b"", qos=1):
        info = self.c.publish(topic, payload, qos)
        return info

    def get(self, timeout=5, topic_prefix=None):
        end = time.time() + timeout
        while True:
            left = end - time.time()
            if left <= 0:
                return None
            try:
                m = self.messages.get(timeout=left)
            except queue.Empty:
                return None
            if topic_prefix is None or m.topic.startswith(topic_prefix):
                return m

    def close(self):
        try:
            self.c.disconnect()
        finally:
            self.c.loop_stop()


def parse_res(topic):
    """`$dps/registrations/res/{status}/?{query}` -> (status, {query})"""
    path, _, query = topic.partition("?")
    status = int(path.rstrip("/").split("/")[-1])
    return status, dict(urllib.parse.parse_qsl(query))


class Cloud:
    def __init__(self, tmp):
        self.dir = os.path.join(tmp, "cloud")
        self.port = free_port()
        self.ws_port = free_port()
        self.devices = []
        self.status = None

    def up(self, *extra):
        p = run("cloud", "up", "--dir", self.dir, "--port", str(self.port), "--ws-port",
                str(self.ws_port), "--json", *extra)
        self.status = json.loads(p.stdout)
        self.scope = self.status["idScope"]
        self.ca = self.status["caFile"]
        self.hub = self.status["hubs"][0]
        return self.status

    def down(self):
        run("cloud", "down", "--dir", self.dir, check=False)

    def cli(self, *args, check=True, timeout=60):
        return run("cloud", *args, "--dir", self.dir, check=check, timeout=timeout)

    def cli_json(self, *args, check=True):
        return json.loads(self.cli(*args, "--json", check=check).stdout)

    def pki_device(self, reg_id, *extra):
        return json.loads(run("pki", "device", reg_id, "--dir", self.dir, "--json", *extra).stdout)

    def pid(self):
        try:
            with open(os.path.join(self.dir, "mosquitto.pid")) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def dps(self, reg_id, cert=None, key=None, password=None, client_id=None, scope=None,
            api=DPS_API, ws=False):
        d = Device(self, client_id or reg_id,
                   f"{scope or self.scope}/registrations/{reg_id}/api-version={api}",
                   password=password, cert=cert, key=key, host="localhost", ws=ws)
        self.devices.append(d)
        return d

    def hub_device(self, device_id, hub=None, cert=None, key=None, password=None, ws=False):
        hub = hub or self.hub
        d = Device(self, device_id, f"{hub}/{device_id}/?api-version={HUB_API}",
                   password=password, cert=cert, key=key, host=hub, ws=ws)
        self.devices.append(d)
        return d

    def register(self, reg_id, payload=None, poll_limit=30, body=None, **kw):
        """Full DPS flow; returns (final status code, final body, list of (status, query)).
        body: the register request's raw body instead of {"registrationId", "payload"}."""
        d = self.dps(reg_id, **kw)
        rc = d.connect()
        assert rc == 0, f"DPS CONNECT refused: {rc}"
        assert d.subscribe("$dps/registrations/res/#") == (1,)
        if body is None:
            body = {"registrationId": reg_id}
            if payload is not None:
                body["payload"] = payload
            body = json.dumps(body)
        d.publish("$dps/registrations/PUT/iotdps-register/?$rid=1", body)
        seen = []
        m = d.get(timeout=10)
        assert m is not None, "no answer to the register request"
        status, q = parse_res(m.topic)
        seen.append((status, q))
        res = json.loads(m.payload) if m.payload else None
        rid = 2
        while status == 202 and rid < poll_limit:
            time.sleep(float(q.get("retry-after", "0")))
            d.publish("$dps/registrations/GET/iotdps-get-operationstatus/"
                      f"?$rid={rid}&operationId={res['operationId']}", b"")
            m = d.get(timeout=10)
            assert m is not None, "no answer to the poll"
            status, q = parse_res(m.topic)
            seen.append((status, q))
            res = json.loads(m.payload)
            rid += 1
        d.close()
        return status, res, seen


def provision(cloud, reg):
    """Enroll a symmetric-key device, register it through DPS; return (hub, key)."""
    e = cloud.cli_json("enrollment", "create", "--registration-id", reg)
    key = e["attestation"]["symmetricKey"]["primaryKey"]
    status, res, _ = cloud.register(reg, password=sas_token(
        f"{cloud.scope}/registrations/{reg}", key, skn="registration"))
    assert status == 200 and res["status"] == "assigned"
    return res["registrationState"]["assignedHub"], key


@pytest.fixture
def cloud():
    tmp = tempfile.mkdtemp(prefix="tether-cloud-test-")
    c = Cloud(tmp)
    try:
        c.up("--retry-after", "1")
        yield c
    finally:
        for d in c.devices:
            try:
                d.c.loop_stop()
            except Exception:
                pass
        c.down()
        pid = c.pid()
        if pid:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        if not os.environ.get("TETHER_KEEP"):
            shutil.rmtree(tmp, ignore_errors=True)
