"""How devices reach Azure: MQTT over TLS 1.2 on 8883 and MQTT over WebSockets on
`wss://{host}:443/$iothub/websocket` (subprotocol `mqtt`, the C SDKs send `MQTT`), for DPS and
the hubs alike, X.509 or SAS; DPS speaks TLS 1.2 only and IoT Hub speaks 1.2 on its regular
host names (1.3 only on its separate device host names); both ask for a client certificate without requiring one. The local cloud listens
on the loopback interface only."""
import json
import os
import re
import socket
import ssl
import struct
import subprocess
import time

import pytest

from conftest import Cloud, derive_key, run, sas_token

WS_PATH = "/$iothub/websocket"
WS_KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 1.3


def listeners(pid):
    """Every listening TCP socket of process pid, as (address, port), from `ss -ltnp`."""
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    found = []
    for line in out.splitlines():
        if f"pid={pid}," not in line:
            continue
        local = line.split()[3]
        addr, _, port = local.rpartition(":")
        found.append((addr, int(port)))
    return found


def test_the_cloud_listens_on_loopback_only(cloud):
    # Both endpoints, and nothing else, bound to 127.0.0.1 (a websockets listener of
    # Mosquitto 2.0.11 bound every interface despite its configuration).
    assert sorted(listeners(cloud.pid())) == sorted([("127.0.0.1", cloud.port),
                                                     ("127.0.0.1", cloud.ws_port)])
    assert cloud.status["wsPort"] == cloud.ws_port
    assert cloud.status["wsEndpoint"] == f"wss://localhost:{cloud.ws_port}{WS_PATH}"


def s_client(port, *args, servername="localhost"):
    p = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername",
                        servername, "-msg", *args], input="", capture_output=True, text=True,
                       timeout=20)
    return p.returncode, p.stdout + p.stderr


@pytest.mark.parametrize("which", ["mqtt", "ws"])
def test_dps_and_hub_speak_tls_1_2_only(cloud, which):
    port = cloud.port if which == "mqtt" else cloud.ws_port
    for name in ("localhost", cloud.hub):  # DPS, then the hub's regular host name
        rc, out = s_client(port, "-tls1_3", servername=name)
        assert rc != 0 and "alert protocol version" in out, out[-600:]
        rc, out = s_client(port, "-tls1_2", servername=name)
        assert rc == 0 and "Protocol  : TLSv1.2" in out, out[-600:]
        # a client certificate is asked for in the first handshake (optional)
        assert "CertificateRequest" in out
    # a client offering 1.2 and 1.3 gets 1.2
    rc, out = s_client(port)
    assert rc == 0 and "Protocol  : TLSv1.2" in out
    # TLS 1.3 only on the hub's separate device host name, {hub}.device.{suffix}
    # (Azure: {hub}.device.azure-devices.net)
    label, _, suffix = cloud.hub.partition(".")
    rc, out = s_client(port, servername=f"{label}.device.{suffix}")
    assert "New, TLSv1.3" in out, out[-600:]


def enroll_x509(cloud, reg):
    dev = cloud.pki_device(reg)
    cloud.cli("enrollment", "create", "--registration-id", reg, "--attestation", "x509",
              "--cert", dev["certificate"])
    return dev


def enroll_sas(cloud, reg):
    e = cloud.cli_json("enrollment", "create", "--registration-id", reg)
    return e["attestation"]["symmetricKey"]["primaryKey"]


def twin_get(d):
    assert d.subscribe("$iothub/twin/res/#") == (1,)
    d.publish("$iothub/twin/GET/?$rid=7", b"")
    m = d.get(timeout=5, topic_prefix="$iothub/twin/res/")
    assert m is not None and m.topic.startswith("$iothub/twin/res/200/")
    return json.loads(m.payload)


def test_x509_device_provisions_and_connects_over_websockets(cloud):
    dev = enroll_x509(cloud, "ws-x509")
    status, res, _ = cloud.register("ws-x509", cert=dev["certificate"], key=dev["key"], ws=True)
    assert status == 200 and res["status"] == "assigned"
    hub = res["registrationState"]["assignedHub"]
    d = cloud.hub_device("ws-x509", hub=hub, cert=dev["certificate"], key=dev["key"], ws=True)
    assert d.connect() == 0
    assert "desired" in twin_get(d)
    d.publish("devices/ws-x509/messages/events/a=1", b"over websockets").wait_for_publish()
    d.close()
    seen = cloud.cli_json("monitor", "--device", "ws-x509", "--all", "--count", "1",
                          "--timeout", "5")
    assert seen["payload"] == "over websockets" and seen["properties"] == {"a": "1"}


def test_symmetric_key_device_provisions_and_connects_over_websockets(cloud):
    key = enroll_sas(cloud, "ws-sas")
    status, res, _ = cloud.register("ws-sas", ws=True, password=sas_token(
        f"{cloud.scope}/registrations/ws-sas", key, skn="registration"))
    assert status == 200 and res["status"] == "assigned"
    hub = res["registrationState"]["assignedHub"]
    d = cloud.hub_device("ws-sas", hub=hub, password=sas_token(f"{hub}/devices/ws-sas", key),
                         ws=True)
    assert d.connect() == 0
    assert "reported" in twin_get(d)
    d.close()
    # the same checks as on 8883: a wrong key is refused in the CONNACK
    bad = cloud.hub_device("ws-sas", hub=hub, ws=True,
                           password=sas_token(f"{hub}/devices/ws-sas", derive_key(key, "x")))
    assert bad.connect() == 5


def ws_upgrade(cloud, path=WS_PATH, proto="mqtt", extra=b""):
    """Open TLS to the WebSocket port and send an upgrade; returns (socket, status, headers)."""
    ctx = ssl.create_default_context(cafile=cloud.ca)
    raw = socket.create_connection(("127.0.0.1", cloud.ws_port), timeout=10)
    s = ctx.wrap_socket(raw, server_hostname="localhost")
    req = (f"GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
           f"Connection: Upgrade\r\nSec-WebSocket-Key: {WS_KEY}\r\n"
           f"Sec-WebSocket-Version: 13\r\n")
    if proto:
        req += f"Sec-WebSocket-Protocol: {proto}\r\n"
    s.sendall(req.encode() + b"\r\n" + extra)
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(1)
        if not chunk:
            break
        head += chunk
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return s, status, headers


def masked_frame(payload, opcode=0x2):
    mask = b"\x01\x02\x03\x04"
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    n = len(payload)
    size = bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack("!H", n)
    return bytes([0x80 | opcode]) + size + mask + body


def mqtt_connect(client_id, username, password):
    def s(x):
        b = x.encode()
        return struct.pack("!H", len(b)) + b
    var = s("MQTT") + bytes([4, 0xC2]) + struct.pack("!H", 60)
    body = var + s(client_id) + s(username) + s(password)
    n, length = len(body), b""
    while True:  # MQTT remaining length
        n, digit = n // 128, n % 128
        length += bytes([digit | (0x80 if n else 0)])
        if not n:
            return bytes([0x10]) + length + body


def read_frame(s):
    hdr = s.recv(2)
    n = hdr[1] & 0x7f
    if n == 126:
        n = struct.unpack("!H", s.recv(2))[0]
    data = b""
    while len(data) < n:
        data += s.recv(n - len(data))
    return hdr[0], data


def test_websocket_subprotocol_mqtt_in_either_case_and_the_path(cloud):
    key = enroll_sas(cloud, "ws-raw")
    pw = sas_token(f"{cloud.scope}/registrations/ws-raw", key, skn="registration")
    connect = mqtt_connect("ws-raw", f"{cloud.scope}/registrations/ws-raw/api-version=2021-06-01",
                           pw)
    for proto in ("mqtt", "MQTT"):
        # the CONNECT may follow the upgrade request at once, before the 101
        s, status, headers = ws_upgrade(cloud, proto=proto, extra=masked_frame(connect))
        assert status == 101
        assert headers["Sec-WebSocket-Accept"] == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        assert headers["Sec-WebSocket-Protocol"] == proto
        op, data = read_frame(s)
        assert op == 0x82 and data == b"\x20\x02\x00\x00"  # binary frame: CONNACK accepted
        # a ping is answered with a pong carrying its payload
        s.sendall(masked_frame(b"hi", opcode=0x9))
        assert read_frame(s) == (0x8A, b"hi")
        s.close()
    s, status, _ = ws_upgrade(cloud, path="/mqtt")
    assert status == 404
    s.close()
    s, status, _ = ws_upgrade(cloud, proto=None)
    assert status == 400
    s.close()
    # an unmasked (server-style) frame closes the connection
    s, status, _ = ws_upgrade(cloud)
    assert status == 101
    s.sendall(bytes([0x82, 126]) + struct.pack("!H", len(connect)) + connect)
    assert s.recv(10) == b""
    s.close()


def ws_sas_device(cloud, reg):
    """A symmetric-key device provisioned over WebSockets, its hub connection not yet open."""
    key = enroll_sas(cloud, reg)
    status, res, _ = cloud.register(reg, ws=True, password=sas_token(
        f"{cloud.scope}/registrations/{reg}", key, skn="registration"))
    assert status == 200
    hub = res["registrationState"]["assignedHub"]
    return cloud.hub_device(reg, hub=hub, password=sas_token(f"{hub}/devices/{reg}", key),
                            ws=True)


def test_large_messages_cross_websockets_both_ways(cloud):
    # 16-bit and 64-bit frame lengths: telemetry up to the hub's 256 KB, C2D up to its 64 KB
    d = ws_sas_device(cloud, "ws-big")
    assert d.connect() == 0
    big = "".join(chr(ord("a") + i % 26) for i in range(200 * 1024))
    d.publish("devices/ws-big/messages/events/", big).wait_for_publish()
    seen = cloud.cli_json("monitor", "--device", "ws-big", "--all", "--count", "1",
                          "--timeout", "10")
    assert seen["payload"] == big
    assert d.subscribe("devices/ws-big/messages/devicebound/#") == (1,)
    c2d = "z" * (60 * 1024)
    cloud.cli("c2d", "send", "ws-big", c2d)
    m = d.get(timeout=10, topic_prefix="devices/ws-big/messages/devicebound/")
    assert m is not None and m.payload.decode() == c2d
    d.close()


@pytest.fixture
def small_sndbuf_cloud(tmp_path, monkeypatch):
    """A cloud whose connections have an 8 KB send buffer (TETHER_CLOUD_SNDBUF, tests only)."""
    monkeypatch.setenv("TETHER_CLOUD_SNDBUF", "8192")
    c = Cloud(str(tmp_path))
    c.up("--retry-after", "1")
    yield c
    c.down()


def test_a_slow_websocket_reader_gets_every_message_intact(small_sndbuf_cloud):
    # The device reads slowly (4 KB receive buffer, paused): the broker's writes block
    # (WANT_WRITE) and are retried; every message still arrives whole and in order.
    cloud = small_sndbuf_cloud
    d = ws_sas_device(cloud, "ws-slow")

    def small_buffer():
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before the handshake
        sock.connect(("127.0.0.1", cloud.ws_port))
        return sock
    d.c._create_socket_connection = small_buffer
    assert d.connect() == 0
    assert d.subscribe("devices/ws-slow/messages/devicebound/#") == (1,)
    d.c.loop_stop()
    bodies = [chr(ord("A") + i) * (60 * 1024) for i in range(12)]
    for b in bodies:
        cloud.cli("c2d", "send", "ws-slow", b)
    time.sleep(1)
    d.c.loop_start()
    got = [d.get(timeout=15, topic_prefix="devices/ws-slow/messages/devicebound/")
           for _ in bodies]
    assert [m.payload.decode() if m else None for m in got] == bodies
    d.close()


def test_the_websocket_port_defaults_to_443_else_8443_else_a_free_one(tmp_path):
    held = []
    for port in (443, 8443):  # taken here (or, for 443, not bindable by this user)
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
            s.listen(1)
            held.append(s)
        except OSError:
            s.close()
    c = Cloud(str(tmp_path))
    try:
        st = json.loads(run("cloud", "up", "--dir", c.dir, "--port", str(c.port),
                            "--json").stdout)
        assert st["wsPort"] not in (443, 8443)
        assert ("127.0.0.1", st["wsPort"]) in listeners(c.pid())
    finally:
        c.down()
        for s in held:
            s.close()
