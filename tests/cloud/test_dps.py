"""DPS: the four attestations, allocation, reprovisioning and every refusal."""
import json
import os
import time

from conftest import sas_token, derive_key, parse_res, DPS_API

ISO = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$"


def check_assigned(cloud, res, reg_id, device_id=None):
    """An assignment to the cloud's default hub (its own name, read from `cloud up --json`)."""
    import re
    assert res["status"] == "assigned", res
    st = res["registrationState"]
    assert st["registrationId"] == reg_id
    assert st["assignedHub"] == cloud.hub
    assert st["deviceId"] == (device_id or reg_id)
    assert st["status"] == "assigned"
    assert st["substatus"] == "initialAssignment"
    assert re.match(ISO, st["createdDateTimeUtc"]) and re.match(ISO, st["lastUpdatedDateTimeUtc"])
    assert st["etag"]
    assert res["operationId"]


def test_x509_individual_by_certificate(cloud):
    dev = cloud.pki_device("pump-17")
    cloud.cli("enrollment", "create", "--registration-id", "pump-17", "--cert", dev["certificate"])
    status, res, seen = cloud.register("pump-17", cert=dev["chain"], key=dev["key"],
                                       payload={"model": "p1"})
    assert seen[0][0] == 202 and seen[0][1]["retry-after"] == "1" and seen[0][1]["$rid"] == "1"
    assert status == 200
    check_assigned(cloud, res, "pump-17")
    assert "payload" not in res["registrationState"]  # only custom allocation returns one
    # the device then reaches its hub with the same certificate
    h = cloud.hub_device("pump-17", cert=dev["chain"], key=dev["key"])
    assert h.connect() == 0
    h.close()


def test_x509_individual_by_thumbprint_self_signed(cloud):
    dev = cloud.pki_device("selfie-1", "--issuer", "self", "--key", "ec-p384")
    cloud.cli("enrollment", "create", "--registration-id", "selfie-1", "--attestation", "x509",
              "--thumbprint", dev["thumbprintSha1"], "--device-id", "selfie-device")
    status, res, _ = cloud.register("selfie-1", cert=dev["certificate"], key=dev["key"])
    assert status == 200
    check_assigned(cloud, res, "selfie-1", device_id="selfie-device")
    h = cloud.hub_device("selfie-device", cert=dev["certificate"], key=dev["key"])
    assert h.connect() == 0
    h.close()


def test_symmetric_key_individual(cloud):
    e = cloud.cli_json("enrollment", "create", "--registration-id", "sym-1",
                       "--attestation", "symmetric-key")
    key = e["attestation"]["symmetricKey"]["primaryKey"]
    tok = sas_token(f"{cloud.scope}/registrations/sym-1", key, skn="registration")
    status, res, _ = cloud.register("sym-1", password=tok)
    assert status == 200
    check_assigned(cloud, res, "sym-1")
    # lower-case %2f escapes (the other SDK) are accepted too, and the secondary key works
    key2 = e["attestation"]["symmetricKey"]["secondaryKey"]
    tok = sas_token(f"{cloud.scope}/registrations/sym-1", key2, skn="registration",
                    lower_escapes=True)
    status, res, _ = cloud.register("sym-1", password=tok)
    assert status == 200 and res["status"] == "assigned"
    # hub: SAS signed with the device key, no skn
    hub = res["registrationState"]["assignedHub"]
    h = cloud.hub_device("sym-1", password=sas_token(f"{hub}/devices/sym-1", key))
    assert h.connect() == 0
    h.close()
    bad = cloud.hub_device("sym-1", password=sas_token(f"{hub}/devices/sym-1", key,
                                                       expiry=int(time.time()) - 10))
    assert bad.connect() == 5  # expired token: CONNACK not authorised


def test_symmetric_key_group(cloud):
    p = cloud.cli("enrollment-group", "create", "--group-id", "fleet", "--attestation",
                  "symmetric-key")
    g = cloud.cli_json("enrollment-group", "show", "fleet")
    gkey = g["attestation"]["symmetricKey"]["primaryKey"]
    assert gkey in p.stdout  # the group key is printed
    for reg in ("fleet-a", "fleet-b"):
        k = derive_key(gkey, reg)
        status, res, _ = cloud.register(reg, password=sas_token(
            f"{cloud.scope}/registrations/{reg}", k, skn="registration"), api="2019-03-31")
        assert status == 200
        check_assigned(cloud, res, reg)
        h = cloud.hub_device(reg, password=sas_token(f"{cloud.hub}/devices/{reg}", k))
        assert h.connect() == 0
        h.close()
    # the group key itself is not a device key
    status, res, _ = cloud.register("fleet-c", password=sas_token(
        f"{cloud.scope}/registrations/fleet-c", gkey, skn="registration"))
    assert status == 401 and res["errorCode"] == 401002


def test_x509_group_on_intermediate_and_root(cloud):
    inter = os.path.join(cloud.dir, "pki", "intermediate.pem")
    cloud.cli("enrollment-group", "create", "--group-id", "line-1", "--attestation", "x509",
              "--ca", inter)
    dev = cloud.pki_device("line-1-dev-9")
    status, res, _ = cloud.register("line-1-dev-9", cert=dev["chain"], key=dev["key"])
    assert status == 200
    check_assigned(cloud, res, "line-1-dev-9")
    h = cloud.hub_device("line-1-dev-9", cert=dev["chain"], key=dev["key"])
    assert h.connect() == 0
    h.close()
    # a group on the root needs the intermediate in the chain the device sends
    cloud.cli("enrollment-group", "delete", "line-1")
    cloud.cli("enrollment-group", "create", "--group-id", "root-group", "--ca",
              os.path.join(cloud.dir, "pki", "root.pem"))
    status, res, _ = cloud.register("line-1-dev-9", cert=dev["chain"], key=dev["key"])
    assert status == 200 and res["status"] == "assigned"
    status, res, _ = cloud.register("line-1-dev-9", cert=dev["certificate"], key=dev["key"])
    assert status == 401 and res["errorCode"] == 401002  # leaf alone does not chain


def expect_401(cloud, reg_id, **kw):
    status, res, seen = cloud.register(reg_id, **kw)
    assert status == 401, (status, res)
    assert res["errorCode"] == 401002 and res["message"] and res["trackingId"]
    assert "timestampUtc" in res
    return res


def test_refusals(cloud):
    # unknown registration (X.509 and SAS)
    dev = cloud.pki_device("stranger")
    res = expect_401(cloud, "stranger", cert=dev["chain"], key=dev["key"])
    expect_401(cloud, "nobody", password=sas_token(f"{cloud.scope}/registrations/nobody",
                                                   "AAAAAAAAAAAAAAAAAAAAAA==", skn="registration"))
    # expired certificate, enrolled by its thumbprint
    old = cloud.pki_device("old-timer", "--days", "-2")
    cloud.cli("enrollment", "create", "--registration-id", "old-timer", "--cert",
              old["certificate"])
    res = expect_401(cloud, "old-timer", cert=old["chain"], key=old["key"])
    assert "expired" in res["message"]
    # CN / username mismatch: enrolled thumbprint, but presented under another id
    cloud.cli("enrollment", "create", "--registration-id", "other-id", "--cert",
              dev["certificate"])
    res = expect_401(cloud, "other-id", cert=dev["chain"], key=dev["key"])
    assert "CN" in res["message"]
    # bad signature and expired token
    e = cloud.cli_json("enrollment", "create", "--registration-id", "sym-r")
    key = e["attestation"]["symmetricKey"]["primaryKey"]
    expect_401(cloud, "sym-r", password=sas_token(f"{cloud.scope}/registrations/sym-r",
                                                  "AAAAAAAAAAAAAAAAAAAAAA==", skn="registration"))
    res = expect_401(cloud, "sym-r", password=sas_token(
        f"{cloud.scope}/registrations/sym-r", key, expiry=int(time.time()) - 60,
        skn="registration"))
    assert "expired" in res["message"]
    # token for another resource
    expect_401(cloud, "sym-r", password=sas_token(f"{cloud.scope}/registrations/sym-x", key,
                                                  skn="registration"))
    # wrong id scope
    expect_401(cloud, "sym-r", scope="0ne00000000", password=sas_token(
        f"0ne00000000/registrations/sym-r", key, skn="registration"))
    # malformed username: refused in the CONNACK
    d = cloud.dps("sym-r", password="x", api="1999-01-01")
    assert d.connect() == 5
    # client id other than the registration id: refused
    d = cloud.dps("sym-r", client_id="someone-else",
                  password=sas_token(f"{cloud.scope}/registrations/sym-r", key))
    assert d.connect() == 5


def test_disabled_and_failed(cloud):
    e = cloud.cli_json("enrollment", "create", "--registration-id", "off-1",
                       "--provisioning-status", "disabled")
    key = e["attestation"]["symmetricKey"]["primaryKey"]
    tok = sas_token(f"{cloud.scope}/registrations/off-1", key, skn="registration")
    status, res, _ = cloud.register("off-1", password=tok)
    assert status == 200 and res["status"] == "disabled"
    assert res["registrationState"]["status"] == "disabled"
    assert "assignedHub" not in res["registrationState"]
    # allocation failure: the enrollment's only hub is gone
    cloud.cli("hub", "create", "doomed")
    cloud.cli("enrollment", "update", "off-1", "--provisioning-status", "enabled", "--hubs",
              "doomed")
    cloud.cli("hub", "delete", "doomed")
    status, res, _ = cloud.register("off-1", password=tok)
    assert status == 200 and res["status"] == "failed"
    st = res["registrationState"]
    assert st["status"] == "failed" and len(str(st["errorCode"])) == 6 and st["errorMessage"]


def test_hashed_and_static_allocation_and_reprovisioning(cloud):
    hub1, name1 = cloud.hub, cloud.hub.removesuffix(".localhost")  # the cloud's default hub
    cloud.cli("hub", "create", "tether-hub-2")
    assert cloud.cli_json("status")["hubs"] == [hub1, "tether-hub-2.localhost"]
    cloud.cli("enrollment-group", "create", "--group-id", "many", "--attestation",
              "symmetric-key", "--allocation", "hashed")
    gkey = cloud.cli_json("enrollment-group", "show", "many")["attestation"]["symmetricKey"][
        "primaryKey"]
    hubs = {}
    for i in range(12):
        reg = f"hash-{i}"
        status, res, _ = cloud.register(reg, password=sas_token(
            f"{cloud.scope}/registrations/{reg}", derive_key(gkey, reg), skn="registration"))
        assert res["status"] == "assigned"
        hubs.setdefault(res["registrationState"]["assignedHub"], []).append(reg)
    assert set(hubs) == {hub1, "tether-hub-2.localhost"}, hubs
    # a device's hub name is in the server certificate: it connects with SNI = hub name
    reg = hubs["tether-hub-2.localhost"][0]
    h = cloud.hub_device(reg, hub="tether-hub-2.localhost",
                         password=sas_token(f"tether-hub-2.localhost/devices/{reg}",
                                            derive_key(gkey, reg)))
    assert h.connect() == 0
    h.close()

    # static + reprovisioning: migrate keeps twin data, reset drops it, never stays
    e = cloud.cli_json("enrollment", "create", "--registration-id", "mover", "--allocation",
                       "static", "--hubs", name1, "--initial-twin",
                       '{"tags":{"site":"a"},"properties":{"desired":{"rate":5}}}')
    key = e["attestation"]["symmetricKey"]["primaryKey"]
    tok = sas_token(f"{cloud.scope}/registrations/mover", key, skn="registration")
    _, res, _ = cloud.register("mover", password=tok)
    assert res["registrationState"]["assignedHub"] == hub1
    twin = cloud.cli_json("twin", "show", "mover")
    assert twin["properties"]["desired"]["rate"] == 5 and twin["tags"] == {"site": "a"}
    h = cloud.hub_device("mover", password=sas_token(f"{hub1}/devices/mover", key))
    assert h.connect() == 0
    assert h.subscribe("$iothub/twin/res/#") == (1,)
    h.publish("$iothub/twin/PATCH/properties/reported/?$rid=1", json.dumps({"fw": "1.0"}))
    assert h.get(topic_prefix="$iothub/twin/res/204/") is not None
    h.close()

    cloud.cli("enrollment", "update", "mover", "--hubs", "tether-hub-2")
    _, res, _ = cloud.register("mover", password=tok)
    st = res["registrationState"]
    assert st["assignedHub"] == "tether-hub-2.localhost" and st["substatus"] == "deviceDataMigrated"
    assert cloud.cli_json("twin", "show", "mover")["properties"]["reported"]["fw"] == "1.0"

    cloud.cli("enrollment", "update", "mover", "--hubs", name1, "--reprovision", "reset")
    _, res, _ = cloud.register("mover", password=tok)
    st = res["registrationState"]
    assert st["assignedHub"] == hub1 and st["substatus"] == "deviceDataReset"
    assert "fw" not in cloud.cli_json("twin", "show", "mover")["properties"]["reported"]

    cloud.cli("enrollment", "update", "mover", "--hubs", "tether-hub-2", "--reprovision", "never")
    _, res, _ = cloud.register("mover", password=tok)
    assert res["registrationState"]["assignedHub"] == hub1
    # the old hub no longer accepts a device that moved away
    h = cloud.hub_device("mover", hub="tether-hub-2.localhost",
                         password=sas_token("tether-hub-2.localhost/devices/mover", key))
    assert h.connect() == 5


def test_malformed_requests_are_answered_and_broker_survives(cloud):
    e = cloud.cli_json("enrollment", "create", "--registration-id", "junk-1")
    key = e["attestation"]["symmetricKey"]["primaryKey"]
    d = cloud.dps("junk-1", password=sas_token(f"{cloud.scope}/registrations/junk-1", key))
    assert d.connect() == 0
    assert d.subscribe("$dps/registrations/res/#", qos=2) == (1,)  # QoS 2 downgraded to 1
    for body in (b"{not json", b"[]", json.dumps({"registrationId": "someone-else"}).encode(),
                 b"\xff\xfe" * 1000):
        d.publish("$dps/registrations/PUT/iotdps-register/?$rid=9", body)
        m = d.get()
        assert m is not None
        status, q = parse_res(m.topic)
        assert status == 400 and q["$rid"] == "9"
        assert json.loads(m.payload)["errorCode"] == 400004
    # unknown operation
    d.publish("$dps/registrations/GET/iotdps-get-operationstatus/?$rid=3&operationId=nope", b"")
    status, _ = parse_res(d.get().topic)
    assert status == 404
    # junk topics are dropped (no answer), the connection stays
    for topic in ("$dps/registrations/PUT/iotdps-register/", "$dps/registrations/PUT/x/?$rid=1",
                  "$dps/registrations/GET/iotdps-get-operationstatus/?$rid=4",
                  "devices/junk-1/messages/events/"):
        d.publish(topic, b"{}")
    assert d.get(timeout=1) is None
    # DPS connections cannot subscribe to hub topics
    assert d.subscribe("$iothub/twin/res/#") == (128,)
    assert d.subscribe("#") == (128,)
    d.close()
    # the broker is still serving
    status, res, _ = cloud.register("junk-1", password=sas_token(
        f"{cloud.scope}/registrations/junk-1", key))
    assert status == 200
