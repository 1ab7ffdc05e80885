"""IoT Hub: telemetry + monitor, C2D across offline periods, twin, methods, the hub's rules,
ACL isolation, persistence."""
import json
import subprocess
import time

import pytest

from conftest import sas_token, TOOL, parse_res, provision


def connect(cloud, reg, hub, key):
    d = cloud.hub_device(reg, hub=hub, password=sas_token(f"{hub}/devices/{reg}", key))
    assert d.connect() == 0
    return d


def test_telemetry_seen_by_monitor(cloud):
    hub, key = provision(cloud, "tele-1")
    mon = subprocess.Popen([TOOL, "cloud", "monitor", "--dir", cloud.dir, "--device", "tele-1",
                            "--count", "2", "--timeout", "20", "--json"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)
    d = connect(cloud, "tele-1", hub, key)
    d.publish("devices/tele-1/messages/events/%24.ct=application%2Fjson&%24.ce=utf-8&temp%20unit=C",
              json.dumps({"t": 21.5})).wait_for_publish()
    d.publish("devices/tele-1/messages/events/", b"plain").wait_for_publish()
    out, err = mon.communicate(timeout=30)
    assert mon.returncode == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert len(lines) == 2
    assert lines[0]["deviceId"] == "tele-1" and lines[0]["hub"] == hub
    assert lines[0]["properties"] == {"$.ct": "application/json", "$.ce": "utf-8", "temp unit": "C"}
    assert json.loads(lines[0]["payload"]) == {"t": 21.5}
    assert lines[1]["payload"] == "plain" and lines[1]["properties"] == {}
    # another device's telemetry topic is refused: nothing recorded
    d.publish("devices/someone/messages/events/", b"spoof").wait_for_publish()
    time.sleep(0.3)
    p = cloud.cli("monitor", "--all", "--count", "3", "--timeout", "1", "--json", check=False)
    assert p.returncode == 1 and "spoof" not in p.stdout
    d.close()


def test_c2d_delivered_after_offline(cloud):
    hub, key = provision(cloud, "c2d-1")
    out = cloud.cli_json("c2d", "send", "c2d-1", "hello while offline", "--props", "color=red")
    assert out["pending"] == 1
    d = connect(cloud, "c2d-1", hub, key)
    assert d.subscribe("devices/c2d-1/messages/devicebound/#") == (1,)
    m = d.get(timeout=5)
    assert m is not None, "queued message not delivered"
    assert m.payload == b"hello while offline" and m.qos == 1
    assert m.topic.startswith("devices/c2d-1/messages/devicebound/")
    assert "color=red" in m.topic and f"%24.mid={out['messageId']}" in m.topic
    # delivered live as well
    cloud.cli("c2d", "send", "c2d-1", "live")
    m = d.get(timeout=5)
    assert m is not None and m.payload == b"live"
    time.sleep(0.6)  # PUBACKs are in; messages are completed (see plugin/hub.c)
    d.close()
    time.sleep(0.3)
    assert cloud.cli_json("device", "show", "c2d-1")["pendingC2d"] in (None, 0)
    # the 50-message limit
    for i in range(50):
        cloud.cli("c2d", "send", "c2d-1", f"m{i}")
    p = cloud.cli("c2d", "send", "c2d-1", "one too many", check=False)
    assert p.returncode == 1 and "50" in p.stderr
    # another device cannot subscribe to c2d-1's messages
    hub2, key2 = provision(cloud, "c2d-2")
    other = connect(cloud, "c2d-2", hub2, key2)
    assert other.subscribe("devices/c2d-1/messages/devicebound/#") == (128,)
    assert other.get(timeout=1) is None
    other.close()


def test_twin_get_reported_desired(cloud):
    hub, key = provision(cloud, "twin-1")
    d = connect(cloud, "twin-1", hub, key)
    assert d.subscribe("$iothub/twin/res/#") == (1,)
    assert d.subscribe("$iothub/twin/PATCH/properties/desired/#") == (1,)
    d.publish("$iothub/twin/GET/?$rid=get1", b"")
    m = d.get()
    status, q = parse_res(m.topic)
    assert status == 200 and q["$rid"] == "get1"
    doc = json.loads(m.payload)
    assert doc == {"desired": {"$version": 1}, "reported": {"$version": 1}}
    d.publish("$iothub/twin/PATCH/properties/reported/?$rid=p1", json.dumps({"fw": "2.1", "x": 1}))
    m = d.get()
    status, q = parse_res(m.topic)
    assert status == 204 and q == {"$rid": "p1", "$version": "2"}
    d.publish("$iothub/twin/PATCH/properties/reported/?$rid=p2", json.dumps({"x": None}))
    status, q = parse_res(d.get().topic)
    assert status == 204 and q["$version"] == "3"
    d.publish("$iothub/twin/PATCH/properties/reported/?$rid=p3", b"not json")
    status, q = parse_res(d.get().topic)
    assert status == 400 and q["$rid"] == "p3"
    twin = cloud.cli_json("twin", "show", "twin-1")
    assert twin["properties"]["reported"] == {"fw": "2.1", "$version": 3}
    cloud.cli("twin", "update", "twin-1", "--desired", '{"rate": 10, "mode": {"a": 1}}')
    m = d.get(topic_prefix="$iothub/twin/PATCH/properties/desired/")
    assert m is not None and m.topic == "$iothub/twin/PATCH/properties/desired/?$version=2"
    assert json.loads(m.payload) == {"rate": 10, "mode": {"a": 1}, "$version": 2}
    d.publish("$iothub/twin/GET/?$rid=get2", b"")
    doc = json.loads(d.get(topic_prefix="$iothub/twin/res/").payload)
    assert doc["desired"] == {"rate": 10, "mode": {"a": 1}, "$version": 2}
    assert doc["reported"] == {"fw": "2.1", "$version": 3}
    d.close()


def test_method_round_trip_offline_and_timeout(cloud):
    hub, key = provision(cloud, "meth-1")
    p = cloud.cli("method", "invoke", "meth-1", "reboot", "--timeout", "2", check=False)
    assert p.returncode == 1 and "status 404" in p.stdout  # offline
    d = connect(cloud, "meth-1", hub, key)
    assert d.subscribe("$iothub/methods/POST/#") == (1,)

    def answer(c, u, m):
        if m.topic.startswith("$iothub/methods/POST/reboot/"):
            rid = parse_res(m.topic)[1]["$rid"] if False else m.topic.split("$rid=")[1]
            req = json.loads(m.payload)
            c.publish(f"$iothub/methods/res/200/?$rid={rid}", json.dumps({"echo": req, "ok": True}))
    d.c.on_message = answer
    out = cloud.cli_json("method", "invoke", "meth-1", "reboot", "--payload", '{"delay": 3}')
    assert out == {"status": 200, "payload": {"echo": {"delay": 3}, "ok": True}}
    t0 = time.time()
    p = cloud.cli("method", "invoke", "meth-1", "silent", "--timeout", "1.5", "--json", check=False)
    assert p.returncode == 1 and json.loads(p.stdout)["status"] == 504
    assert 1.3 < time.time() - t0 < 6
    d.close()


def test_one_connection_per_device_and_hub_rules(cloud):
    hub, key = provision(cloud, "solo-1")
    first = connect(cloud, "solo-1", hub, key)
    second = connect(cloud, "solo-1", hub, key)
    assert first.disconnects.get(timeout=5) is not None  # the old connection was dropped
    # at most 5 subscriptions; unknown filters are refused
    subs = ["devices/solo-1/messages/devicebound/#", "$iothub/twin/res/#",
            "$iothub/twin/PATCH/properties/desired/#", "$iothub/methods/POST/#"]
    for s in subs:
        assert second.subscribe(s) == (1,)
    assert second.subscribe("$iothub/twin/GET/#") == (128,)
    assert second.subscribe("$dps/registrations/res/#") == (128,)
    # QoS 2 publish closes the connection
    second.publish("devices/solo-1/messages/events/", b"x", qos=2)
    assert second.disconnects.get(timeout=5) is not None
    # oversized telemetry closes the connection; the broker keeps serving
    third = connect(cloud, "solo-1", hub, key)
    third.publish("devices/solo-1/messages/events/", b"x" * (256 * 1024 + 1), qos=1)
    assert third.disconnects.get(timeout=10) is not None
    fourth = connect(cloud, "solo-1", hub, key)
    fourth.close()
    # a device unknown to the hub, or with the wrong key, is refused in the CONNACK
    stranger = cloud.hub_device("nobody", password=sas_token(f"{hub}/devices/nobody", key))
    assert stranger.connect() == 5
    wrong = cloud.hub_device("solo-1", password=sas_token(f"{hub}/devices/solo-1",
                                                          "AAAAAAAAAAAAAAAAAAAAAA=="))
    assert wrong.connect() == 5


def test_state_survives_down_up(cloud):
    hub, key = provision(cloud, "keep-1")
    d = connect(cloud, "keep-1", hub, key)
    assert d.subscribe("$iothub/twin/res/#") == (1,)
    d.publish("$iothub/twin/PATCH/properties/reported/?$rid=1", json.dumps({"v": 7}))
    assert d.get() is not None
    d.close()
    cloud.cli("twin", "update", "keep-1", "--desired", '{"d": 1}')
    cloud.cli("c2d", "send", "keep-1", "survivor")
    cloud.down()
    cloud.up()
    assert [e["registrationId"] for e in cloud.cli_json("enrollment", "list")] == ["keep-1"]
    twin = cloud.cli_json("twin", "show", "keep-1")
    assert twin["properties"]["reported"]["v"] == 7 and twin["properties"]["desired"]["d"] == 1
    d = connect(cloud, "keep-1", hub, key)
    assert d.subscribe("devices/keep-1/messages/devicebound/#") == (1,)
    m = d.get(timeout=5)
    assert m is not None and m.payload == b"survivor"
    d.close()


def test_c2d_requeued_when_the_connection_drops_at_once(cloud):
    import socket as so
    hub, key = provision(cloud, "drop-1")
    cloud.cli("c2d", "send", "drop-1", "fragile")
    d = connect(cloud, "drop-1", hub, key)
    d.c._send_puback = lambda mid: 0  # never PUBACKs; the socket goes away at once
    d.subscribe("devices/drop-1/messages/devicebound/#")
    time.sleep(0.05)
    d.c.loop_stop()
    d.c._sock.shutdown(so.SHUT_RDWR)
    d.c._sock.close()
    time.sleep(0.5)
    d = connect(cloud, "drop-1", hub, key)
    assert d.subscribe("devices/drop-1/messages/devicebound/#") == (1,)
    m = d.get(timeout=5)
    assert m is not None and m.payload == b"fragile"
    d.close()


def test_json_listings(cloud):
    hub, key = provision(cloud, "list-1")
    cloud.cli("enrollment-group", "create", "--group-id", "g1")
    assert [g["enrollmentGroupId"] for g in cloud.cli_json("enrollment-group", "list")] == ["g1"]
    e = cloud.cli_json("enrollment", "show", "list-1")
    assert e["registrationId"] == "list-1" and e["attestation"]["type"] == "symmetricKey"
    assert e["provisioningStatus"] == "enabled" and e["allocationPolicy"] == "hashed"
    assert [h["host"] for h in cloud.cli_json("hub", "list")] == [cloud.hub]
    devs = cloud.cli_json("device", "list")
    assert [d["deviceId"] for d in devs] == ["list-1"] and devs[0]["hub"] == hub
    assert cloud.cli_json("fault", "list") == []
    assert cloud.cli_json("twin", "show", "list-1")["deviceId"] == "list-1"
    missing = cloud.cli("enrollment", "show", "nope", "--json", check=False)
    assert missing.returncode == 1 and "no enrollment" in missing.stderr


def test_hub_create_while_running_keeps_devices_connected(cloud):
    hub, key = provision(cloud, "stay-1")
    d = connect(cloud, "stay-1", hub, key)
    out = json.loads(cloud.cli("hub", "create", "late-hub", "--json").stdout)
    assert out["host"] == "late-hub.localhost"
    time.sleep(1)
    assert d.disconnects.empty()  # the broker reloaded its certificate without dropping anyone
    # the new name is in the served certificate: TLS (SNI + host name check) succeeds and the
    # unknown device is refused by the hub itself (CONNACK 5), not by TLS
    probe = cloud.hub_device("ghost", hub="late-hub.localhost",
                             password=sas_token("late-hub.localhost/devices/ghost", key))
    assert probe.connect() == 5
    d.close()
