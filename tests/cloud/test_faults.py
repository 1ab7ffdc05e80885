"""Faults on purpose: DPS throttling and 5xx, slow assignment, hub CONNACK refusal."""
import json

from conftest import sas_token


def enroll(cloud, reg):
    e = cloud.cli_json("enrollment", "create", "--registration-id", reg)
    key = e["attestation"]["symmetricKey"]["primaryKey"]
    return key, sas_token(f"{cloud.scope}/registrations/{reg}", key, skn="registration")


def test_dps_throttle_error_and_slow_assignment(cloud):
    key, tok = enroll(cloud, "f-1")
    cloud.cli("fault", "set", "dps-throttle", "--rate", "1", "--seconds", "3")
    assert cloud.cli_json("fault", "list")[0]["name"] == "dps-throttle"
    status, res, seen = cloud.register("f-1", password=tok)
    assert status == 429 and seen[0][1]["retry-after"] == "3"
    assert res["errorCode"] == 429001
    cloud.cli("fault", "clear", "dps-throttle")
    cloud.cli("fault", "set", "dps-error", "--status", "503")
    status, res, _ = cloud.register("f-1", password=tok)
    assert status == 503 and res["errorCode"] == 503000
    cloud.cli("fault", "clear")
    assert cloud.cli_json("fault", "list") == []
    cloud.cli("fault", "set", "slow-assignment", "--seconds", "2")
    status, res, seen = cloud.register("f-1", password=tok)
    assert status == 200 and res["status"] == "assigned"
    assert [s for s, _ in seen].count(202) >= 2  # still assigning after the first retry-after
    assert seen[0][1]["retry-after"] == "1"


def test_hub_connack_refusal(cloud):
    key, tok = enroll(cloud, "f-2")
    status, res, _ = cloud.register("f-2", password=tok)
    hub = res["registrationState"]["assignedHub"]
    cloud.cli("fault", "set", "hub-refuse", "--device", "f-2")
    d = cloud.hub_device("f-2", password=sas_token(f"{hub}/devices/f-2", key))
    assert d.connect() == 5
    cloud.cli("fault", "clear", "hub-refuse")
    d = cloud.hub_device("f-2", password=sas_token(f"{hub}/devices/f-2", key))
    assert d.connect() == 0
    d.close()
    bad = cloud.cli("fault", "set", "no-such-fault", check=False)
    assert bad.returncode != 0 and "unknown fault" in bad.stderr
