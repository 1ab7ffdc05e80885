"""The device flow against the local cloud: provisioning with each attestation, the stored
result, reprovisioning, throttling and errors, and the hub session (telemetry through a broker
restart, cloud-to-device, twin, methods, SAS renewal), on the esp-idf and tight profiles."""
import json
import os
import subprocess
import time

import pytest

from conftest import BUILD, TETHER, Cloud, device_args, enroll, finish, free_port, run_json, tether

PROFILES = ["esp-idf", "tight"]


def binary(profile):
    path = BUILD / f"tether-{profile}"
    if not path.exists():
        pytest.skip(f"{path.name} not built (configure with -DTETHER_ALL_PROFILES=ON)")
    return path


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("kind", ["x509-individual", "x509-group", "sk-individual", "sk-group"])
def test_provision_remember_and_send(cloud, tmp_path, profile, kind):
    bin_path = binary(profile)
    reg_id = f"dev-{kind}-{profile}"
    args = device_args(cloud, reg_id, enroll(cloud, kind, reg_id), tmp_path / "dev.state")

    p, r, _ = run_json(bin_path, "register", *args)
    assert p.returncode == 0, p.stdout + p.stderr
    assert r["from_store"] is False
    assert r["assigned_hub"] == cloud.hub and r["device_id"] == reg_id
    assert cloud.registrations(reg_id) == 1

    # A restart with a valid stored result does not call DPS.
    p, r, _ = run_json(bin_path, "register", *args)
    assert p.returncode == 0 and r["from_store"] is True
    assert cloud.registrations(reg_id) == 1

    p, r, _ = run_json(bin_path, "send", *args, "--message", '{"kind":"%s"}' % kind)
    assert p.returncode == 0, p.stdout + p.stderr
    assert r["sent"] == 1 and r["unacknowledged"] == 0 and r["registered"] is False
    assert cloud.registrations(reg_id) == 1
    assert [m["payload"] for m in cloud.telemetry(reg_id, 1)] == ['{"kind":"%s"}' % kind]

    # Forced: DPS is called again.
    p, r, _ = run_json(bin_path, "register", *args, "--force")
    assert p.returncode == 0 and r["from_store"] is False
    assert cloud.registrations(reg_id) == 2


def test_changed_credentials_or_damaged_record_reprovision(cloud, tmp_path):
    state = tmp_path / "dev.state"
    cred = enroll(cloud, "sk-individual", "dev-change")
    args = device_args(cloud, "dev-change", cred, state)
    assert run_json(TETHER, "register", *args)[0].returncode == 0
    text = state.read_text()
    other = "T" + cloud.hub[1:]  # another hub name of the same length
    state.write_text(text.replace(cloud.hub, other))  # checksum no longer matches
    p = tether("register", *args)
    assert p.returncode == 0
    assert "stored result not used: STORE_CORRUPT" in p.stdout
    assert cloud.registrations("dev-change") == 2
    # The secondary key is another credential: the record is foreign to it.
    key2 = cloud.json("enrollment", "show", "dev-change")["attestation"]["symmetricKey"]["secondaryKey"]
    p = tether("register", *device_args(cloud, "dev-change", ["--symmetric-key", key2], state))
    assert p.returncode == 0
    assert "STORE_FOREIGN" in p.stdout
    assert cloud.registrations("dev-change") == 3


def test_wrong_key_is_refused_by_name(cloud, tmp_path):
    enroll(cloud, "sk-individual", "dev-wrong")
    bad = "d3JvbmcgYnV0IHdlbGwtZm9ybWVkIGtleSBmb3IgdGhlIHRlc3Q="
    p = tether("register", *device_args(cloud, "dev-wrong", ["--symmetric-key", bad],
                                        tmp_path / "s"))
    assert p.returncode == 1
    assert p.stderr.startswith("error DPS_UNAUTHORIZED")
    assert "401002" in p.stderr
    assert "no enrollment for this registration id" in p.stderr


def test_throttling_honours_retry_after_and_5xx_is_retried(cloud, tmp_path):
    cred = enroll(cloud, "sk-individual", "dev-busy")
    cloud.cli("fault", "set", "dps-throttle", "--seconds", "2")
    reg = subprocess.Popen([str(TETHER), "register",
                            *map(str, device_args(cloud, "dev-busy", cred, tmp_path / "s"))],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(3)
    cloud.cli("fault", "clear", "dps-throttle")
    cloud.cli("fault", "set", "dps-error", "--status", "503")
    time.sleep(2)
    cloud.cli("fault", "clear", "dps-error")
    out, err = reg.communicate(timeout=90)
    assert reg.returncode == 0, out + err
    assert "429 throttled; server asks to retry after 2.0 s" in out
    assert "503 server error; waiting" in out
    assert f"assigned to {cloud.hub}" in out


@pytest.mark.parametrize("profile", PROFILES)
def test_hub_session_methods_twin_and_offline_c2d(cloud, tmp_path, profile):
    bin_path = binary(profile)
    cred = enroll(cloud, "x509-individual", "dev-hub")
    args = device_args(cloud, "dev-hub", cred, tmp_path / "s")
    assert run_json(bin_path, "register", *args)[0].returncode == 0
    # Queued while the device is offline; delivered when it connects.
    cloud.cli("c2d", "send", "dev-hub", "while you were away", "--props", "color=blue")
    run = subprocess.Popen([str(bin_path), "run", *map(str, args), "--duration", "8", "--json",
                            "--report", '{"firmware":"1.2.3"}', "--method", 'reboot={"ok":1}'],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert json.loads(run.stdout.readline())["event"] == "connected"
        inv = cloud.json("method", "invoke", "dev-hub", "reboot", "--payload", '{"delay":0}')
        assert inv["status"] == 200 and inv["payload"] == {"ok": 1}
        inv = cloud.json("method", "invoke", "dev-hub", "nosuch")
        assert inv["status"] == 404
        cloud.cli("twin", "update", "dev-hub", "--desired", '{"rate":7}')
        out, err = finish(run, 60)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 0, err
    events = [json.loads(line) for line in out.splitlines() if line.strip()]
    kinds = [e.get("event") for e in events]
    c2d = [e for e in events if e.get("event") == "c2d"]
    assert c2d and c2d[0]["payload"] == "while you were away" and "color=blue" in c2d[0]["properties"]
    assert "twin" in kinds and "reported" in kinds
    desired = [e for e in events if e.get("event") == "desired"]
    assert desired and json.loads(desired[0]["patch"])["rate"] == 7
    assert [e["name"] for e in events if e.get("event") == "method"] == ["reboot", "nosuch"]
    twin = cloud.json("twin", "show", "dev-hub")
    assert twin["properties"]["reported"]["firmware"] == "1.2.3"


@pytest.mark.parametrize("profile", PROFILES)
def test_no_qos1_telemetry_lost_across_a_hub_restart(cloud, tmp_path, profile):
    bin_path = binary(profile)
    cred = enroll(cloud, "x509-individual", f"dev-restart-{profile}")
    args = device_args(cloud, f"dev-restart-{profile}", cred, tmp_path / "s")
    assert run_json(bin_path, "register", *args)[0].returncode == 0
    registered = cloud.registrations(f"dev-restart-{profile}")
    run = subprocess.Popen([str(bin_path), "run", *map(str, args), "--message", "m{n}",
                            "--count", "40", "--interval", "100", "--json"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)
    cloud.down()
    time.sleep(1)
    cloud.up()
    out, err = finish(run, 120)
    assert run.returncode == 0, out + err
    summary = json.loads(out.splitlines()[-1])
    assert summary["sent"] == 40 and summary["unacknowledged"] == 0
    assert summary["connects"] >= 2, out
    # The hub came back: the device reconnected to it, with backoff, and did not go to DPS.
    assert summary["registered"] is False, out
    assert cloud.registrations(f"dev-restart-{profile}") == registered
    got = {m["payload"] for m in cloud.telemetry(f"dev-restart-{profile}", 40)}
    assert got == {f"m{n}" for n in range(1, 41)}


@pytest.mark.parametrize("profile", PROFILES)
def test_sas_token_is_renewed_before_it_expires(cloud, tmp_path, profile):
    cred = enroll(cloud, "sk-individual", "dev-ttl")
    args = device_args(cloud, "dev-ttl", cred, tmp_path / "s")
    p, r, _ = run_json(binary(profile), "run", *args, "--sas-ttl", "3", "--duration", "8",
                       "--message", "t{n}", "--count", "6", "--interval", "1000")
    assert p.returncode == 0, p.stdout + p.stderr
    assert r["token_renewals"] >= 2 and r["connects"] >= 3
    assert r["sent"] == 6 and r["unacknowledged"] == 0


def test_device_moved_to_another_hub_is_reprovisioned(cloud, tmp_path):
    cloud.cli("hub", "create", "tether-hub-2")
    cred = enroll(cloud, "x509-individual", "dev-move")
    cloud.cli("enrollment", "update", "dev-move", "--hubs", cloud.hub,
              "--allocation", "static")
    stale = tmp_path / "stale.state"
    args = device_args(cloud, "dev-move", cred, stale)
    assert run_json(TETHER, "register", *args)[1]["assigned_hub"] == cloud.hub
    # The operator moves the device: a registration from elsewhere lands it on hub 2.
    cloud.cli("enrollment", "update", "dev-move", "--hubs", "tether-hub-2.localhost",
              "--allocation", "static")
    other = device_args(cloud, "dev-move", cred, tmp_path / "other.state")
    assert run_json(TETHER, "register", *other, "--force")[1]["assigned_hub"] == \
        "tether-hub-2.localhost"
    # The stale device is refused by hub 1, registers again and lands on hub 2.
    p, r, _ = run_json(TETHER, "send", *args, "--message", "moved")
    assert p.returncode == 0, p.stdout + p.stderr
    assert r["registered"] is True and r["assigned_hub"] == "tether-hub-2.localhost"
    assert "tether-hub-2.localhost" in stale.read_text()


def test_quickstart_runs_the_whole_flow_and_stops_its_cloud(tmp_path):
    d = tmp_path / "qs"
    p = tether("quickstart", "--dir", d, "--port", free_port(), timeout=180)
    assert p.returncode == 0, p.stdout + p.stderr
    out = p.stdout
    hub = json.loads(tether("cloud", "status", "--dir", d, "--json", check=True).stdout)["hubs"][0]
    assert f"200 assigned to {hub} as quickstart-device" in out
    assert "messages sent     5 (0 unacknowledged)" in out
    assert 'method ping       200 {"pong":true}' in out
    assert "c2d received      1" in out
    assert '"tether":{"version"' in out  # the reported twin property, as the cloud stores it
    assert "TLS heap peak" in out
    status = json.loads(tether("cloud", "status", "--dir", d, "--json", check=True).stdout)
    assert status["running"] is False


def test_sas_commands_match_the_public_check_value():
    p = tether("sas", "derive-key", "--group-key",
               "8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw==",
               "--registration-id", "sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6", check=True)
    assert p.stdout.strip() == "Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc="
    key = "Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc="
    dps = json.loads(tether("sas", "dps", "--id-scope", "0ne00AB12CD", "--registration-id",
                            "dev-1", "--key", key, "--json", check=True).stdout)
    assert dps["sas"].startswith("SharedAccessSignature sr=0ne00AB12CD%2Fregistrations%2Fdev-1&sig=")
    assert dps["sas"].endswith("&skn=registration") or "&skn=registration" in dps["sas"]
    hub = tether("sas", "hub", "--hub", "h.azure-devices.net", "--device-id", "dev-1", "--key",
                 key, check=True).stdout.strip()
    assert hub.startswith("SharedAccessSignature sr=h.azure-devices.net%2Fdevices%2Fdev-1")
    assert "skn=" not in hub
    bad = tether("sas", "hub", "--hub", "h", "--device-id", "d", "--key", "not base64!")
    assert bad.returncode == 1 and bad.stderr.startswith("error SAS_KEY_INVALID")
