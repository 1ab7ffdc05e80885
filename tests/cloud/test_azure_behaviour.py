"""Azure behaviours of the local cloud, one test per finding of issue 11 (and the two of
issue 14 that are the same faults). Each test states what DPS or IoT Hub does and checks
that the local cloud does the same for an ordinary MQTT client (Eclipse Paho)."""
import json
import time

import pytest

from conftest import sas_token, parse_res


def enroll_sas(cloud, reg):
    e = cloud.cli_json("enrollment", "create", "--registration-id", reg)
    return e["attestation"]["symmetricKey"]["primaryKey"]


def dps_token(cloud, reg, key):
    return sas_token(f"{cloud.scope}/registrations/{reg}", key, skn="registration")


def dps_flow(cloud, reg, body, **kw):
    """Register with a raw request body; returns (final status, final body)."""
    status, res, _ = cloud.register(reg, body=body, **kw)
    return status, res


def provision(cloud, reg):
    key = enroll_sas(cloud, reg)
    status, res = dps_flow(cloud, reg, json.dumps({"registrationId": reg}),
                           password=dps_token(cloud, reg, key))
    assert status == 200 and res["status"] == "assigned", res
    return res["registrationState"]["assignedHub"], key


def hub_connect(cloud, dev, hub, key, clean=True, ws=False):
    d = cloud.hub_device(dev, hub=hub, password=sas_token(f"{hub}/devices/{dev}", key), ws=ws)
    if not clean:
        d.c._clean_session = False
    assert d.connect() == 0
    return d


# 11.1 -------------------------------------------------------------------------------------
def test_empty_register_body_means_the_username_id(cloud):
    """DPS reads an empty register body as {"registrationId": <the id in the username>}
    (the Azure SDK for Embedded C's provisioning client publishes an empty body)."""
    key = enroll_sas(cloud, "empty-body-1")
    status, res = dps_flow(cloud, "empty-body-1", b"",
                           password=dps_token(cloud, "empty-body-1", key))
    assert status == 200, res
    assert res["status"] == "assigned"
    assert res["registrationState"]["registrationId"] == "empty-body-1"
    assert res["registrationState"]["deviceId"] == "empty-body-1"
    # a body naming another registration is still refused
    key2 = enroll_sas(cloud, "empty-body-2")
    status, res = dps_flow(cloud, "empty-body-2", json.dumps({"registrationId": "empty-body-1"}),
                           password=dps_token(cloud, "empty-body-2", key2))
    assert status == 400 and res["errorCode"] == 400004


# 11.2 -------------------------------------------------------------------------------------
def test_c2d_filter_with_a_wildcard_gets_only_own_messages(cloud):
    """IoT Hub accepts `devices/+/messages/devicebound/#` (the Embedded C SDK's filter) and
    still delivers only the device's own cloud-to-device messages."""
    hub, key = provision(cloud, "wild-1")
    hub2, key2 = provision(cloud, "wild-2")
    a = hub_connect(cloud, "wild-1", hub, key)
    b = hub_connect(cloud, "wild-2", hub2, key2)
    assert a.subscribe("devices/+/messages/devicebound/#") == (1,)
    assert b.subscribe("devices/+/messages/devicebound/#") == (1,)
    cloud.cli("c2d", "send", "wild-2", "for wild-2 only")
    cloud.cli("c2d", "send", "wild-1", "for wild-1")
    m = a.get(timeout=5)
    assert m is not None and m.payload == b"for wild-1"
    assert m.topic.startswith("devices/wild-1/messages/devicebound/")
    m = b.get(timeout=5)
    assert m is not None and m.payload == b"for wild-2 only"
    assert a.get(timeout=1) is None, "another device's message arrived"
    # other wildcard shapes are still refused
    assert a.subscribe("devices/#") == (128,)
    assert a.subscribe("devices/+/messages/#") == (128,)
    a.close()
    b.close()


# 11.4 and 14.1 ----------------------------------------------------------------------------
def test_no_connection_ends_another_identitys_session(cloud):
    """DPS and IoT Hub are separate services: a DPS connection never ends a hub connection,
    and a client that proved nothing ends nobody's connection. The attack of issue 14: no
    certificate, no password, a well-formed DPS username and the victim's device id as
    client id (DPS accepts such a CONNECT and refuses the register request)."""
    import os
    from conftest import Device
    hub, key = provision(cloud, "victim-1")
    victim = hub_connect(cloud, "victim-1", hub, key, clean=False)
    assert victim.subscribe("$iothub/twin/res/#") == (1,)
    assert victim.subscribe("devices/victim-1/messages/devicebound/#") == (1,)
    for attempt in range(5):
        thief = Device(cloud, "victim-1", f"{cloud.scope}/registrations/victim-1/api-version="
                       "2021-06-01", host="localhost")
        assert thief.connect() == 0
        assert thief.subscribe("$dps/registrations/res/#") == (1,)
        thief.publish("$dps/registrations/PUT/iotdps-register/?$rid=1",
                      json.dumps({"registrationId": "victim-1"}))
        m = thief.get(timeout=5)
        assert m is not None and parse_res(m.topic)[0] == 401
        thief.close()
    # two unattested clients of the same id, and a real registration while both the
    # victim's hub connection and an unattested DPS connection are open
    lurker = Device(cloud, "victim-1", f"{cloud.scope}/registrations/victim-1/api-version="
                    "2021-06-01", host="localhost")
    assert lurker.connect() == 0
    status, res = dps_flow(cloud, "victim-1", json.dumps({"registrationId": "victim-1"}),
                           password=dps_token(cloud, "victim-1", key))
    assert status == 200 and res["registrationState"]["assignedHub"] == hub
    assert lurker.disconnects.empty(), "a DPS registration ended an unrelated DPS connection"
    lurker.close()
    assert victim.disconnects.empty(), "a DPS connection ended the device's hub connection"
    # the victim's session is intact and working
    victim.publish("$iothub/twin/GET/?$rid=after", b"")
    m = victim.get(timeout=5, topic_prefix="$iothub/twin/res/")
    assert m is not None and parse_res(m.topic)[0] == 200
    cloud.cli("c2d", "send", "victim-1", "still here")
    m = victim.get(timeout=5, topic_prefix="devices/")
    assert m is not None and m.payload == b"still here"
    with open(os.path.join(cloud.dir, "mosquitto.log"), errors="replace") as f:
        assert "closing old connection" not in f.read()
    victim.close()


# 11.3 -------------------------------------------------------------------------------------
def session_connect(cloud, dev, hub, key, clean):
    """Connect with the given CleanSession flag; returns (device, sessionPresent)."""
    d = cloud.hub_device(dev, hub=hub, password=sas_token(f"{hub}/devices/{dev}", key))
    d.c._clean_session = clean
    flags = []
    d.c.on_connect = lambda c, u, f, rc: (flags.append(f.get("session present", 0)),
                                          d.connack.put(rc))
    assert d.connect() == 0
    return d, flags[0]


def everything_arrives(cloud, d, dev, tag):
    """Twin response, desired patch, method call and C2D message reach d without any
    SUBSCRIBE on this connection."""
    import subprocess
    from conftest import TOOL
    d.publish(f"$iothub/twin/GET/?$rid={tag}", b"")
    m = d.get(timeout=5, topic_prefix="$iothub/twin/res/")
    assert m is not None and parse_res(m.topic)[1]["$rid"] == tag, "no twin response"
    cloud.cli("twin", "update", dev, "--desired", json.dumps({"tag": tag}))
    m = d.get(timeout=5, topic_prefix="$iothub/twin/PATCH/properties/desired/")
    assert m is not None and json.loads(m.payload)["tag"] == tag, "no desired patch"
    call = subprocess.Popen([TOOL, "cloud", "method", "invoke", dev, "ping", "--dir", cloud.dir,
                             "--timeout", "5", "--json"], stdout=subprocess.PIPE, text=True)
    m = d.get(timeout=5, topic_prefix="$iothub/methods/POST/")
    assert m is not None and m.topic.startswith("$iothub/methods/POST/ping/"), "no method call"
    d.publish(f"$iothub/methods/res/200/?$rid={m.topic.split('$rid=')[1]}", b'{"pong":1}')
    out, _ = call.communicate(timeout=20)
    assert json.loads(out)["status"] == 200
    cloud.cli("c2d", "send", dev, tag)
    # an earlier message whose PUBACK a blip cut off may come first (at least once)
    m = d.get(timeout=5, topic_prefix="devices/")
    while m is not None and m.payload != tag.encode():
        m = d.get(timeout=5, topic_prefix="devices/")
    assert m is not None, "no cloud-to-device message"


def test_subscriptions_persist_across_sessions_with_clean_session_0(cloud):
    """IoT Hub keeps a CleanSession 0 session's subscriptions: a client that reconnects
    with CleanSession 0, gets sessionPresent 1 and does not subscribe again (the Node.js SDK
    after a network blip or a SAS renewal) still gets everything. CleanSession 1 drops
    them."""
    import socket as so
    hub, key = provision(cloud, "keep-subs-1")
    d, present = session_connect(cloud, "keep-subs-1", hub, key, clean=False)
    assert present == 0
    for f in ("$iothub/twin/res/#", "$iothub/twin/PATCH/properties/desired/#",
              "$iothub/methods/POST/#", "devices/keep-subs-1/messages/devicebound/#"):
        assert d.subscribe(f) == (1,)
    everything_arrives(cloud, d, "keep-subs-1", "first")
    d.close()  # DISCONNECT sent
    d, present = session_connect(cloud, "keep-subs-1", hub, key, clean=False)
    assert present == 1
    everything_arrives(cloud, d, "keep-subs-1", "after-disconnect")
    d.c.loop_stop()  # a network blip: the socket goes away without DISCONNECT
    d.c._sock.shutdown(so.SHUT_RDWR)
    d.c._sock.close()
    time.sleep(0.3)
    d, present = session_connect(cloud, "keep-subs-1", hub, key, clean=False)
    assert present == 1
    everything_arrives(cloud, d, "keep-subs-1", "after-blip")
    # a new connection while this one is open takes the session over (SAS renewal)
    d2, present = session_connect(cloud, "keep-subs-1", hub, key, clean=False)
    assert present == 1
    d.c.loop_stop()
    everything_arrives(cloud, d2, "keep-subs-1", "after-takeover")
    d2.close()
    # CleanSession 1: the session and its subscriptions are gone
    d3, present = session_connect(cloud, "keep-subs-1", hub, key, clean=True)
    assert present == 0
    d3.publish("$iothub/twin/GET/?$rid=gone", b"")
    assert d3.get(timeout=1) is None
    d3.close()
    d4, present = session_connect(cloud, "keep-subs-1", hub, key, clean=False)
    assert present == 0
    d4.publish("$iothub/twin/GET/?$rid=gone2", b"")
    assert d4.get(timeout=1) is None
    d4.close()


def test_a_resumed_session_may_subscribe_again(cloud):
    """Every Azure SDK for Embedded C sample connects with CleanSession 0 and subscribes on every
    run: a resumed session that already holds a filter gets it granted again (MQTT 3.1.1
    3.8.4: the new subscription replaces the old), on the hub and on DPS, and everything still
    arrives. A repeat on the same connection is still refused (issue 14 item 3). Found by
    running the SDK's paho samples twice: the second run failed with SUBACK 0x80."""
    hub, key = provision(cloud, "resub-1")
    filters = ("$iothub/twin/res/#", "$iothub/twin/PATCH/properties/desired/#",
               "$iothub/methods/POST/#", "devices/+/messages/devicebound/#")
    for run in ("first", "second", "third"):
        d, present = session_connect(cloud, "resub-1", hub, key, clean=False)
        assert present == (0 if run == "first" else 1)
        for f in filters:
            assert d.subscribe(f) == (1,), (run, f)
        assert d.subscribe(filters[0]) == (128,), run  # a repeat on this connection
        everything_arrives(cloud, d, "resub-1", run)
        d.close()
    # DPS: the same, and the registration still answers
    key = enroll_sas(cloud, "resub-dps-1")
    for run in range(2):
        d = cloud.dps("resub-dps-1", password=dps_token(cloud, "resub-dps-1", key))
        d.c._clean_session = False
        assert d.connect() == 0
        assert d.subscribe("$dps/registrations/res/#") == (1,), run
        assert d.subscribe("$dps/registrations/res/#") == (128,), run
        d.publish("$dps/registrations/PUT/iotdps-register/?$rid=1",
                  json.dumps({"registrationId": "resub-dps-1"}))
        m = d.get(timeout=10)
        assert m is not None and parse_res(m.topic)[0] in (200, 202), run
        d.close()


# 11.8 and 14.6 ----------------------------------------------------------------------------
def pending_c2d(cloud, dev):
    return cloud.cli_json("device", "show", dev).get("pendingC2d") or 0


def receive_unacknowledged(cloud, dev, hub, key, text, ws=False):
    """Send text to dev; a new connection of dev receives it and does not PUBACK it.
    Returns (the connection, the message)."""
    cloud.cli("c2d", "send", dev, text)
    d = hub_connect(cloud, dev, hub, key, ws=ws)
    d.c._send_puback = lambda mid: 0  # this client does not acknowledge
    assert d.subscribe(f"devices/{dev}/messages/devicebound/#") == (1,)
    m = d.get(timeout=5)
    assert m is not None and m.payload == text.encode()
    return d, m


@pytest.mark.parametrize("ws", [False, True], ids=["mqtt", "websockets"])
def test_c2d_completed_on_puback_and_only_then(cloud, ws):
    """IoT Hub completes a cloud-to-device message when the device PUBACKs it (MQTT cannot
    reject or abandon): a message the device acknowledged never comes back, however soon
    the connection ends, and one it did not acknowledge comes back, however long the
    connection lived. Over MQTT and over WebSockets alike."""
    hub, key = provision(cloud, "ack-1")
    # acknowledged, then the client leaves at once: 5 short-lived runs, each gets a new one
    import queue
    for i in range(5):
        cloud.cli("c2d", "send", "ack-1", f"run-{i}")
        d = hub_connect(cloud, "ack-1", hub, key, ws=ws)
        acked = queue.Queue()
        send_puback = d.c._send_puback
        d.c._send_puback = lambda mid, f=send_puback, q=acked: (f(mid), q.put(mid))[0]
        assert d.subscribe("devices/ack-1/messages/devicebound/#") == (1,)
        m = d.get(timeout=5)
        assert m is not None and m.payload == f"run-{i}".encode(), \
            "an acknowledged message came back"
        assert acked.get(timeout=5) == m.mid
        d.close()  # PUBACK, then DISCONNECT, well within 300 ms of the send
    assert d.get(timeout=0.5) is None
    # not acknowledged: the connection lives 2 s, then drops; the message comes back
    d, m = receive_unacknowledged(cloud, "ack-1", hub, key, "unacked", ws=ws)
    time.sleep(2)
    assert pending_c2d(cloud, "ack-1") == 1, "completed without a PUBACK"
    d.close()
    d = hub_connect(cloud, "ack-1", hub, key, ws=ws)
    assert d.subscribe("devices/ack-1/messages/devicebound/#") == (1,)
    m = d.get(timeout=5)
    assert m is not None and m.payload == b"unacked", "an unacknowledged message was lost"
    d.close()
    time.sleep(0.3)
    assert pending_c2d(cloud, "ack-1") == 0


def test_c2d_completed_only_by_the_connection_it_went_to(cloud):
    """IoT Hub completes a message on the PUBACK of the connection it was delivered on. A
    PUBACK on any other connection completes nothing, even one whose MQTT client id is the
    device's id: an unattested DPS client (which DPS accepts until its register request),
    or the device's own DPS registration, whose packet ids start at 1 as the hub's do."""
    from conftest import Device
    hub, key = provision(cloud, "ack-other-1")
    d, m = receive_unacknowledged(cloud, "ack-other-1", hub, key, "not acknowledged")
    thief = Device(cloud, "ack-other-1", f"{cloud.scope}/registrations/ack-other-1/"
                   "api-version=2021-06-01", host="localhost")
    assert thief.connect() == 0
    thief.c._send_puback(m.mid)  # the packet id the hub connection got the message with
    # the SUBACK comes after the broker has read the PUBACK (one connection, in order)
    assert thief.subscribe("$dps/registrations/res/#") == (1,)
    thief.close()
    assert pending_c2d(cloud, "ack-other-1") == 1, "another connection's PUBACK completed it"
    d.close()
    d = hub_connect(cloud, "ack-other-1", hub, key)
    assert d.subscribe("devices/ack-other-1/messages/devicebound/#") == (1,)
    m = d.get(timeout=5)
    assert m is not None and m.payload == b"not acknowledged", "the message was lost"
    d.close()


def test_c2d_not_completed_by_the_hubs_own_puback(cloud):
    """Only the device's PUBACK completes a message. The hub's PUBACK of the device's own
    QoS 1 telemetry carries a packet id from the device's numbering, which may equal the
    one the message went out with: it completes nothing."""
    hub, key = provision(cloud, "ack-own-1")
    d, m = receive_unacknowledged(cloud, "ack-own-1", hub, key, "not acknowledged")
    d.c._last_mid = m.mid - 1  # the device's next packet id is the message's
    info = d.publish("devices/ack-own-1/messages/events/", b"telemetry")
    info.wait_for_publish(timeout=5)
    assert info.is_published() and info.mid == m.mid  # the hub's PUBACK has come back
    assert pending_c2d(cloud, "ack-own-1") == 1, "the hub's PUBACK completed the message"
    d.close()


def test_c2d_completed_whatever_its_message_id(cloud):
    """Every message id IoT Hub allows is completed on PUBACK, also one whose encoded form
    in the topic (`%24.mid=%23%23...`) is three times as long as the id itself, for a
    device whose id has the longest length allowed (128)."""
    import queue
    dev = "ack-mid-" + "x" * 120
    hub, key = provision(cloud, dev)
    for mid in ("#" * 128, "+$%'" * 32):
        cloud.cli("c2d", "send", dev, "odd id", "--message-id", mid)
        d = hub_connect(cloud, dev, hub, key)
        acked = queue.Queue()
        send_puback = d.c._send_puback
        d.c._send_puback = lambda pid, f=send_puback, q=acked: (f(pid), q.put(pid))[0]
        assert d.subscribe(f"devices/{dev}/messages/devicebound/#") == (1,)
        m = d.get(timeout=5)
        assert m is not None and m.payload == b"odd id"
        assert acked.get(timeout=5) == m.mid
        d.close()
        d = hub_connect(cloud, dev, hub, key)
        assert d.subscribe(f"devices/{dev}/messages/devicebound/#") == (1,)
        assert d.get(timeout=1) is None, f"an acknowledged message came back (id {mid!r})"
        d.close()
        assert pending_c2d(cloud, dev) == 0


def test_c2d_not_lost_on_a_slow_link_that_resets(cloud):
    """Issue 14.6: through `tether cloud proxy --delay 350 --reset-after 4000`, 40 messages
    sent while the device keeps reconnecting: all 40 arrive (a duplicate is acceptable, a
    loss is not) and all are completed."""
    import subprocess
    import threading
    from conftest import TOOL, free_port
    hub, key = provision(cloud, "slow-1")
    port = free_port()
    proxy = subprocess.Popen([TOOL, "cloud", "proxy", "--listen", str(port), "--to",
                              f"127.0.0.1:{cloud.port}", "--delay", "350", "--reset-after",
                              "4000"], stderr=subprocess.DEVNULL)
    sent = [f"m{i:02d}" for i in range(40)]
    got = []
    connections = 0

    def send_all():
        for s in sent:
            cloud.cli("c2d", "send", "slow-1", s)
            time.sleep(0.2)
    sender = threading.Thread(target=send_all)
    try:
        sender.start()
        deadline = time.time() + 75
        while time.time() < deadline and (set(got) != set(sent) or sender.is_alive()
                                           or pending_c2d(cloud, "slow-1")):
            d = cloud.hub_device("slow-1", hub=hub,
                                 password=sas_token(f"{hub}/devices/slow-1", key))
            d.c._dial_port = port
            d.c.on_connect = lambda c, u, f, rc: (
                c.subscribe("devices/slow-1/messages/devicebound/#", 1), d.connack.put(rc))
            d.c.on_message = lambda c, u, m: got.append(m.payload.decode())
            if d.connect(timeout=8) == 0:
                connections += 1
                try:
                    d.disconnects.get(timeout=6)  # the proxy resets every 4 s
                except Exception:
                    pass
            d.c.loop_stop()
        sender.join()
        lost = sorted(set(sent) - set(got))
        print(f"slow link: 40 sent, {len(set(got))} received, {len(lost)} lost, "
              f"{len(got) - len(set(got))} duplicates, {connections} connections")
        assert lost == [], f"lost: {lost}"
        assert pending_c2d(cloud, "slow-1") == 0
        assert connections >= 3, "the link was never reset: the test proved nothing"
    finally:
        sender.join()
        proxy.terminate()
        proxy.wait(timeout=5)


# 11.7 -------------------------------------------------------------------------------------
ALLOCATOR = r'''
import json, sys
req = json.load(sys.stdin)
open(sys.argv[1], "w").write(json.dumps(req))
ctx = req["deviceRuntimeContext"]
model = (ctx.get("payload") or {}).get("model")
hubs = req["linkedHubs"]
hub = [h for h in hubs if h.startswith("tether-hub-2")][0] if model == "big" else hubs[0]
print(json.dumps({"iotHubHostName": hub, "payload": {"for": ctx["registrationId"], "model": model}}))
'''


def test_payload_only_from_custom_allocation(cloud, tmp_path):
    """DPS returns registrationState.payload only from a custom allocation policy (its
    webhook's response); the device's own payload is never echoed. Locally the webhook is a
    command reading the AllocationRequest on stdin and writing the AllocationResponse."""
    key = enroll_sas(cloud, "echo-1")
    status, res = dps_flow(cloud, "echo-1", json.dumps({"registrationId": "echo-1",
                                                        "payload": {"model": "big"}}),
                           password=dps_token(cloud, "echo-1", key))
    assert status == 200 and "payload" not in res["registrationState"]
    # custom allocation: the command picks the hub from the device's payload
    cloud.cli("hub", "create", "tether-hub-2")
    script = tmp_path / "alloc.py"
    script.write_text(ALLOCATOR)
    seen = tmp_path / "request.json"
    e = cloud.cli_json("enrollment", "create", "--registration-id", "custom-1", "--allocation",
                       "custom", "--custom-command", f"/usr/bin/python3 {script} {seen}")
    assert e["allocationPolicy"] == "custom"
    key = e["attestation"]["symmetricKey"]["primaryKey"]
    status, res = dps_flow(cloud, "custom-1", json.dumps({"registrationId": "custom-1",
                                                          "payload": {"model": "big"}}),
                           password=dps_token(cloud, "custom-1", key))
    assert status == 200, res
    st = res["registrationState"]
    assert st["assignedHub"].startswith("tether-hub-2")
    assert st["payload"] == {"for": "custom-1", "model": "big"}
    req = json.loads(seen.read_text())
    assert req["individualEnrollment"]["registrationId"] == "custom-1"
    assert req["deviceRuntimeContext"]["registrationId"] == "custom-1"
    assert req["deviceRuntimeContext"]["payload"] == {"model": "big"}
    assert "symmetricKey" in req["deviceRuntimeContext"]
    assert sorted(req["linkedHubs"]) == cloud.cli_json("status")["hubs"]
    # the device reaches the hub the command chose
    d = cloud.hub_device("custom-1", hub=st["assignedHub"],
                         password=sas_token(f"{st['assignedHub']}/devices/custom-1", key))
    assert d.connect() == 0
    d.close()
    # a failing command: the registration fails and says why
    cloud.cli("enrollment", "update", "custom-1", "--custom-command", "exit 3")
    status, res = dps_flow(cloud, "custom-1", json.dumps({"registrationId": "custom-1"}),
                           password=dps_token(cloud, "custom-1", key))
    assert status == 200 and res["status"] == "failed"
    assert "Custom allocation failed" in res["registrationState"]["errorMessage"]
    # custom without a command is refused by the command line
    p = cloud.cli("enrollment", "create", "--registration-id", "custom-2", "--allocation",
                  "custom", check=False)
    assert p.returncode != 0 and "--custom-command" in p.stderr


def test_custom_allocation_is_bounded(cloud):
    """The allocation command runs inside the broker, so its bounds are the broker's: a
    command that does not finish within 5 s (still writing, or done writing but still
    running) is killed and one that writes more than 64 KB is cut off; the registration
    fails and says why, and the broker answers the next request."""
    e = cloud.cli_json("enrollment", "create", "--registration-id", "custom-slow", "--allocation",
                       "custom", "--custom-command", "exit 3")
    key = e["attestation"]["symmetricKey"]["primaryKey"]
    hub = cloud.cli_json("status")["hubs"][0]
    answer = json.dumps({"iotHubHostName": hub})
    for cmd, why in ((f"cat >/dev/null; echo '{answer}'; exec sleep 30", "took longer"),
                     (f"cat >/dev/null; echo '{answer}'; exec >&-; exec sleep 30", "took longer"),
                     ("head -c 70000 /dev/zero", "more than 64 KB")):
        cloud.cli("enrollment", "update", "custom-slow", "--custom-command", cmd)
        status, res = dps_flow(cloud, "custom-slow", b"",
                               password=dps_token(cloud, "custom-slow", key))
        assert status == 200 and res["status"] == "failed", (cmd, res)
        assert why in res["registrationState"]["errorMessage"], (cmd, res)


# 11.10 ------------------------------------------------------------------------------------
def test_small_ones_topics_methods_and_the_readiness_probe(cloud):
    """Cloud-to-device properties and message ids reach the topic encoded (MQTT forbids `+`
    and `#` in a topic name), system properties are the hub's, a device's own 404 is told
    apart from the hub's 404 for an offline device, and `cloud up` leaves no failed TLS
    handshake of its own in the broker's log."""
    import os
    import urllib.parse
    hub, key = provision(cloud, "small-1")
    d = hub_connect(cloud, "small-1", hub, key)
    assert d.subscribe("devices/small-1/messages/devicebound/#") == (1,)
    out = cloud.cli_json("c2d", "send", "small-1", "sum", "--props", "a=1+2&b=x#y/z&c%2Bd=%23",
                         "--message-id", "id+1#2")
    m = d.get(timeout=5)
    assert m is not None and m.payload == b"sum"
    assert "+" not in m.topic and "#" not in m.topic
    bag = m.topic.split("devices/small-1/messages/devicebound/", 1)[1]
    props = dict(urllib.parse.parse_qsl(bag.replace("+", "%2B"), keep_blank_values=True))
    assert props["a"] == "1+2" and props["b"] == "x#y/z" and props["c+d"] == "#"
    assert props["$.mid"] == "id+1#2" == out["messageId"]
    # system properties cannot be set through --props: no second $.mid
    p = cloud.cli("c2d", "send", "small-1", "x", "--props", "%24.mid=forged", check=False)
    assert p.returncode != 0 and "$.mid" in p.stderr
    p = cloud.cli("c2d", "send", "small-1", "x", "--props", "$.to=/devices/other", check=False)
    assert p.returncode != 0
    assert d.get(timeout=0.5) is None
    d.c.on_message = None
    # a device's own 404 versus the hub's 404 for an offline device
    assert d.subscribe("$iothub/methods/POST/#") == (1,)

    def answer_404(c, u, msg):
        if msg.topic.startswith("$iothub/methods/POST/"):
            rid = msg.topic.split("$rid=")[1]
            c.publish(f"$iothub/methods/res/404/?$rid={rid}", b'{"why":"no such lamp"}')
    d.c.on_message = answer_404
    p = cloud.cli("method", "invoke", "small-1", "lamp", "--timeout", "5", check=False)
    assert p.returncode == 0 and "answered by the device" in p.stdout and "offline" not in p.stdout
    out = json.loads(cloud.cli("method", "invoke", "small-1", "lamp", "--json").stdout)
    assert out == {"status": 404, "payload": {"why": "no such lamp"}}
    d.close()
    time.sleep(0.3)
    p = cloud.cli("method", "invoke", "small-1", "lamp", "--timeout", "2", check=False)
    assert p.returncode == 1 and "offline" in p.stdout
    out = json.loads(cloud.cli("method", "invoke", "small-1", "lamp", "--timeout", "2", "--json",
                               check=False).stdout)
    assert out["status"] == 404 and out["errorCode"] == 404103
    # the readiness probe of `cloud up` (run again after a down) leaves nothing in the log
    cloud.down()
    log = os.path.join(cloud.dir, "mosquitto.log")
    os.remove(log)
    cloud.up()
    time.sleep(0.3)
    with open(log, errors="replace") as f:
        text = f.read()
    assert "running" in text
    assert "unexpected eof" not in text and "Client connection from" not in text, text
