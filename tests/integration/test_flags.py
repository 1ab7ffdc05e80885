"""Issue 10, item 4: flags do what the help says.

A flag on the command line wins over what the stored result holds (--connect-to, --force);
--state FILE supplies the ids it holds; --verbose traces every handshake of register and run
with heap figures; a DPS response tether cannot read is shown (cut and escaped) in text and
--json, as the DPS_MALFORMED_RESPONSE hint promises."""
import json
import re
import subprocess
import threading

import paho.mqtt.client as mqtt

from conftest import TETHER, enroll, free_port
from test_time import in_1970, ntp_server  # noqa: F401 (a fixture)


def _tether(*args, timeout=120):
    return subprocess.run([str(TETHER), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def _last_json(p):
    lines = [line for line in p.stdout.splitlines() if line.strip()]
    assert lines, p.stdout + p.stderr
    return json.loads(lines[-1])


def _register_without_connect_to(cloud, tmp_path, reg_id):
    """A registration that stores no connect-to address (localhost is the cloud's address)."""
    cred = enroll(cloud, "x509-individual", reg_id)
    state = tmp_path / f"{reg_id}.state"
    p = _tether("register", "--endpoint", f"localhost:{cloud.port}", "--id-scope", cloud.scope,
                "--registration-id", reg_id, "--cafile", cloud.ca, "--state", state, *cred,
                "--verbose")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "connect_to=\n" in state.read_text()
    return cred, state, p


def test_verbose_register_traces_the_handshake(cloud, tmp_path):
    _, _, p = _register_without_connect_to(cloud, tmp_path, "flag-verbose")
    stages = re.findall(r"^  tls (\d)/7 .* heap +(\d+) B \(peak (\d+)\)$", p.stderr, re.M)
    assert [s[0] for s in stages] == [str(i) for i in range(1, 8)], p.stderr
    assert all(int(peak) >= int(heap) > 0 for _, heap, peak in stages[1:])


def test_connect_to_and_state_on_send(cloud, tmp_path):
    """register stored no address; `send --state F --connect-to` asks for no ids, dials the
    flag's address (the hub's own name would not answer here) and traces the hub's
    handshake."""
    cred, state, _ = _register_without_connect_to(cloud, tmp_path, "flag-via")
    p = _tether("send", "--message", "hello", "--state", state, "--cafile", cloud.ca, *cred,
                "--connect-to", f"127.0.0.1:{cloud.port}", "--verbose", "--json")
    assert p.returncode == 0, p.stdout + p.stderr
    j = _last_json(p)
    assert j["sent"] == 1 and j["unacknowledged"] == 0 and j["registered"] is False
    assert j["device_id"] == "flag-via"
    assert len(re.findall(r"^  tls \d/7 ", p.stderr, re.M)) == 7, p.stderr
    assert [m["payload"] for m in cloud.telemetry("flag-via", 1)] == ["hello"]


def test_connect_to_overrides_a_stored_address(cloud, tmp_path):
    cred = enroll(cloud, "x509-individual", "flag-over")
    state = tmp_path / "over.state"
    p = _tether("register", "--endpoint", f"localhost:{cloud.port}", "--connect-to",
                f"127.0.0.1:{cloud.port}", "--id-scope", cloud.scope, "--registration-id",
                "flag-over", "--cafile", cloud.ca, "--state", state, *cred)
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"connect_to=127.0.0.1:{cloud.port}\n" in state.read_text()
    dead = free_port()  # nothing listens there: only the flag can send tether to it
    p = _tether("send", "--message", "x", "--state", state, "--cafile", cloud.ca, *cred,
                "--connect-to", f"127.0.0.1:{dead}", "--timeout", "2", "--json")
    assert p.returncode == 1
    assert _last_json(p)["status"] == "CONNECT_REFUSED", p.stdout + p.stderr
    assert cloud.json("device", "show", "flag-over")["registrations"] == 1


def test_force_on_send_registers_again(cloud, tmp_path):
    cred, state, _ = _register_without_connect_to(cloud, tmp_path, "flag-force")
    p = _tether("send", "--message", "again", "--state", state, "--cafile", cloud.ca, *cred,
                "--endpoint", f"localhost:{cloud.port}", "--connect-to",
                f"127.0.0.1:{cloud.port}", "--force", "--json")
    assert p.returncode == 0, p.stdout + p.stderr
    assert _last_json(p)["registered"] is True
    assert cloud.json("device", "show", "flag-force")["registrations"] == 2


def test_state_without_a_result_asks_for_the_ids(tmp_path, cloud):
    p = _tether("send", "--message", "x", "--state", tmp_path / "none.state", "--cafile",
                cloud.ca, "--symmetric-key", "AAAA")
    assert p.returncode == 2
    assert "--id-scope and --registration-id are required" in p.stderr
    assert "STORE_EMPTY" in p.stderr


def test_malformed_dps_response_is_shown(make_broker, pki, tmp_path):
    """A broker plays DPS and answers the registration with a payload that is not JSON, longer
    than tether keeps, with a control byte and a non-ASCII byte in it."""
    broker = make_broker()
    key, crt = pki.device("malformed-dev")
    akey, acrt = pki.device("answerer")
    payload = b'{"operationId":"4.x","status":"assigned",\x01\xff' + b"x" * 300
    subscribed = threading.Event()

    def on_message(client, _userdata, msg):
        rid = msg.topic.split("$rid=")[1]
        client.publish(f"$dps/registrations/res/200/?$rid={rid}", payload, qos=1)

    answerer = mqtt.Client(client_id="answerer")
    answerer.tls_set(ca_certs=str(pki.root), certfile=str(acrt), keyfile=str(akey))
    answerer.on_message = on_message
    answerer.on_subscribe = lambda *a: subscribed.set()
    answerer.on_connect = lambda c, *a: c.subscribe("$dps/registrations/PUT/#", qos=1)
    answerer.connect("localhost", broker.port)
    answerer.loop_start()
    try:
        assert subscribed.wait(10)
        args = ["register", "--endpoint", f"localhost:{broker.port}", "--id-scope", "0ne00000000",
                "--registration-id", "malformed-dev", "--cafile", pki.root, "--cert", crt,
                "--key", key, "--state", tmp_path / "m.state", "--timeout", "20"]
        text = _tether(*args)
        js = _tether(*args, "--json")
    finally:
        answerer.loop_stop()
        answerer.disconnect()

    topic = "$dps/registrations/res/200/?$rid=1"
    assert text.returncode == 1, text.stdout + text.stderr
    assert "error DPS_MALFORMED_RESPONSE" in text.stderr
    line = next(l for l in text.stderr.splitlines() if l.startswith("  response: "))
    assert line.startswith(f'  response: {topic} {{"operationId":"4.x","status":"assigned",'
                           r"\x01\xff" + "xxx"), line
    total = len(topic) + 1 + len(payload)
    assert line.endswith(f"more of {total} bytes)"), line
    assert "DPS answered 200" in text.stderr

    assert js.returncode == 1
    j = _last_json(js)
    assert j["status"] == "DPS_MALFORMED_RESPONSE" and j["http_status"] == 200
    assert j["response"].startswith(f'{topic} {{"operationId":"4.x"')
    assert "\u0001\u00ff" in j["response"]  # every byte kept, escaped
    assert j["response_truncated"] is True and j["response_bytes"] == total
    assert len(j["response"]) == 256


def test_kiss_of_death_shows_its_code(tmp_path):
    """SNTP_KISS_OF_DEATH's hint says the kiss code is in the details: it is, in both forms.
    A scripted server answers one request with a RATE kiss-o'-death (RFC 5905, 7.4)."""
    import socket

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(10)

    def answer(n):
        for _ in range(n):
            req, peer = sock.recvfrom(128)
            reply = bytearray(48)
            reply[0] = (3 << 6) | (4 << 3) | 4  # unsynchronised, version 4, server
            reply[1] = 0  # stratum 0: a kiss-o'-death
            reply[12:16] = b"RATE"
            reply[24:32] = req[40:48]  # originate = the request's transmit time
            sock.sendto(bytes(reply), peer)

    server = threading.Thread(target=answer, args=(2,))
    server.start()
    try:
        text = _tether("time", "sync", "--server", f"127.0.0.1:{sock.getsockname()[1]}")
        js = _tether("time", "sync", "--server", f"127.0.0.1:{sock.getsockname()[1]}", "--json")
    finally:
        server.join(15)
        sock.close()
    assert text.returncode == 1 and "error SNTP_KISS_OF_DEATH" in text.stderr, text.stderr
    assert "  kiss code: RATE" in text.stderr
    j = _last_json(js)
    assert j["status"] == "SNTP_KISS_OF_DEATH" and j["kiss_code"] == "RATE"


def _answering_client(pki, broker, name, answers):
    """A paho client on the broker that answers each request topic prefix with a publish:
    answers maps a subscription to a function(topic) -> (topic, payload)."""
    key, crt = pki.device(name)
    ready = threading.Event()
    client = mqtt.Client(client_id=name)
    client.tls_set(ca_certs=str(pki.root), certfile=str(crt), keyfile=str(key))

    def on_message(c, _userdata, msg):
        for prefix, answer in answers.items():
            if msg.topic.startswith(prefix.rstrip("#")):
                c.publish(*answer(msg.topic), qos=1)

    client.on_message = on_message
    client.on_subscribe = lambda *a: ready.set()
    client.on_connect = lambda c, *a: c.subscribe([(t, 1) for t in answers])
    client.connect("localhost", broker.port)
    client.loop_start()
    assert ready.wait(10)
    return client


def test_unreadable_hub_topic_is_shown(make_broker, pki, tmp_path):
    """HUB_MALFORMED_TOPIC's hint says the topic is in the details: a message on a topic tether
    cannot read is reported with it, not dropped in silence. One broker plays DPS (assigning
    the device to itself) and the hub, which sends a cloud-to-device message whose property
    bag has a bad escape."""
    broker = make_broker()
    key, crt = pki.device("hubdev")
    assigned = json.dumps({"operationId": "4.op", "status": "assigned", "registrationState": {
        "registrationId": "hubdev", "assignedHub": "localhost", "deviceId": "hubdev",
        "status": "assigned", "substatus": "initialAssignment"}})
    bad = "devices/hubdev/messages/devicebound/%zz=1"
    client = _answering_client(pki, broker, "cloud-side", {
        "$dps/registrations/PUT/#": lambda t: (
            "$dps/registrations/res/200/?$rid=" + t.split("$rid=")[1], assigned),
        "$iothub/twin/GET/#": lambda t: (bad, b"payload"),
    })
    try:
        base = ["--cafile", pki.root, "--cert", crt, "--key", key, "--state", tmp_path / "h.state"]
        p = _tether("register", "--endpoint", f"localhost:{broker.port}", "--connect-to",
                    f"127.0.0.1:{broker.port}", "--id-scope", "0ne00000000", "--registration-id",
                    "hubdev", *base)
        assert p.returncode == 0, p.stdout + p.stderr
        text = _tether("run", *base, "--duration", "2")
        js = _tether("run", *base, "--duration", "2", "--json")
    finally:
        client.loop_stop()
        client.disconnect()
    assert text.returncode == 0, text.stdout + text.stderr
    assert (f"warning: HUB_MALFORMED_TOPIC: a 7-byte message on topic {bad} was not handled"
            in text.stdout), text.stdout
    events = [json.loads(l) for l in js.stdout.splitlines() if l.startswith('{"event"')]
    assert {"event": "unreadable", "cause": "HUB_MALFORMED_TOPIC", "size": 7,
            "topic": bad} in events, js.stdout


def test_register_keeps_a_new_connect_to(cloud, tmp_path):
    """A stored result is used, but the address on the command line replaces the stored one."""
    cred = enroll(cloud, "x509-individual", "flag-move")
    state = tmp_path / "move.state"
    common = ["--endpoint", f"localhost:{cloud.port}", "--id-scope", cloud.scope,
              "--registration-id", "flag-move", "--cafile", cloud.ca, "--state", state, *cred]
    assert _tether("register", *common, "--connect-to", f"127.0.0.1:{cloud.port}").returncode == 0
    p = _tether("register", *common, "--connect-to", f"localhost:{cloud.port}")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "already provisioned" in p.stdout
    assert f"connect_to=localhost:{cloud.port}\n" in state.read_text()
    assert cloud.json("device", "show", "flag-move")["registrations"] == 1


def test_doctor_takes_state_sntp_and_timeout(cloud, ntp_server, tmp_path):
    """doctor on a clock at 1970: --sntp-server sets it before the clock check (and the
    handshake's own sync keeps it set); --state gives the ids."""
    cred, state, _ = _register_without_connect_to(cloud, tmp_path, "flag-doc")
    args = ["doctor", "--state", state, "--endpoint", f"localhost:{cloud.port}", "--connect-to",
            f"127.0.0.1:{cloud.port}", "--cafile", cloud.ca, *cred, "--timeout", "30"]
    p = in_1970(*args, "--sntp-server", ntp_server)
    assert p.returncode == 0, p.stdout + p.stderr
    lines = p.stdout.splitlines()
    assert any(l.startswith("PASS") and f"clock set from {ntp_server}" in l for l in lines)
    assert any(l.startswith("PASS") and "clock is set" in l for l in lines), p.stdout
    assert any(l.startswith("PASS") and "DPS assigned flag-doc" in l for l in lines), p.stdout

    p = in_1970(*args)
    assert p.returncode == 1
    assert any(l.startswith("FAIL") and "sync time first" in l for l in p.stdout.splitlines())
