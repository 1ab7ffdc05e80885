"""Issue 10, item 3: a maximum fragment length smaller than the client's Certificate message.

mbedTLS 3.6 sends a handshake message in one record and cannot split it, so a 512- or
1024-byte fragment length with the local cloud's two-certificate chain (a Certificate message
of about 1 KB) can only end in the server's record_overflow. tether refuses it before
connecting, with both numbers and the fix; doctor says FAIL; and when the check is bypassed,
the diagnosis after the failure names the real cause."""
import json
import os
import subprocess

import pytest

from conftest import TETHER, device_args, enroll, tether


def _register(cloud, tmp_path, reg_id, *extra, env=None):
    cred = enroll(cloud, "x509-group", reg_id)
    args = device_args(cloud, reg_id, cred, tmp_path / f"{reg_id}.state")
    return subprocess.run([str(TETHER), "register", *map(str, args), *map(str, extra)], capture_output=True,
                          text=True, timeout=120, env=env)


def _json(p):
    lines = [line for line in p.stdout.splitlines() if line.strip()]
    assert lines, p.stdout + p.stderr
    return json.loads(lines[-1])


@pytest.mark.parametrize("mfl", [512, 1024])
def test_register_refuses_before_connecting(cloud, tmp_path, mfl):
    p = _register(cloud, tmp_path, f"mfl-{mfl}", "--max-fragment", mfl)
    assert p.returncode == 1, p.stdout + p.stderr
    err = p.stderr
    assert "error TLS_FRAGMENT_LENGTH_TOO_SMALL before connecting" in err, err
    assert f"the maximum fragment length asked for is {mfl} bytes" in err
    assert "your Certificate message is " in err
    assert "fix: --max-fragment 2048, or a shorter chain" in err
    assert "registering" not in p.stdout  # nothing was dialled

    j = _json(_register(cloud, tmp_path, f"mfl-{mfl}-json", "--max-fragment", mfl, "--json"))
    assert j["status"] == "TLS_FRAGMENT_LENGTH_TOO_SMALL"
    assert j["available"] == mfl
    assert mfl < j["needed"] <= 2048  # the chain of leaf + intermediate
    assert j["bytes_sent"] == 0 and j["stage_name"] == "not started"
    # Nothing reached DPS: the enrollment group has no registration.
    assert cloud.cli("device", "show", f"mfl-{mfl}", check=False).returncode != 0


def test_register_with_a_fragment_length_that_holds_the_message(cloud, tmp_path):
    p = _register(cloud, tmp_path, "mfl-2048", "--max-fragment", 2048)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "assigned to" in p.stdout


def test_doctor_fails_the_fragment_length_check(cloud, tmp_path):
    cred = enroll(cloud, "x509-group", "mfl-doc")
    args = device_args(cloud, "mfl-doc", cred, tmp_path / "doc.state")
    p = tether("doctor", *args, "--max-fragment", "512", "--no-register")
    assert p.returncode == 1, p.stdout + p.stderr
    line = next(l for l in p.stdout.splitlines() if "maximum fragment length" in l)
    assert line.startswith("FAIL"), line
    assert "Certificate message" in line and "> the 512-byte maximum fragment length" in line
    assert "record_overflow" in line and "--max-fragment 2048" in line
    # The doomed handshake is not tried.
    assert "SKIP" in next(l for l in p.stdout.splitlines() if "handshake" in l)

    ok = tether("doctor", *args, "--max-fragment", "2048", "--no-register")
    line = next(l for l in ok.stdout.splitlines() if "maximum fragment length" in l)
    assert line.startswith("PASS"), ok.stdout + ok.stderr


def test_diagnosis_after_record_overflow_names_the_cause(cloud, tmp_path):
    """With the check bypassed, the server accepts the limit, gets the Certificate message in
    one record and answers record_overflow: that, not 'fragment length refused', is said."""
    env = dict(os.environ, TETHER_SEND_OVERSIZED_HANDSHAKE="1")
    # DPS ignores the extension, as Azure's does: the server that accepts it is a hub that
    # honours it (IoT Hub's preview), reached by its name (SNI) on the same broker.
    cloud.down()
    tether("cloud", "up", "--dir", cloud.dir, "--port", cloud.port, "--hub-fragment-length",
           "honour", check=True)

    def _register(cloud, tmp_path, reg_id, *extra, env=None):
        cred = enroll(cloud, "x509-group", reg_id)
        args = device_args(cloud, reg_id, cred, tmp_path / f"{reg_id}.state")
        args[1] = f"{cloud.hub}:{cloud.port}"  # --endpoint: the hub's name, honoured there
        return subprocess.run([str(TETHER), "register", *map(str, args), *map(str, extra)],
                              capture_output=True, text=True, timeout=120, env=env)

    p = _register(cloud, tmp_path, "mfl-bypass", "--max-fragment", 1024, "--timeout", "10",
                  env=env)
    assert p.returncode == 1, p.stdout + p.stderr
    err = p.stderr
    assert "TLS_FRAGMENT_LENGTH_REFUSED" not in err
    assert "error TLS_FRAGMENT_LENGTH_TOO_SMALL during the TLS handshake" in err, err
    assert "the server accepted the 1024-byte maximum fragment length" in err
    assert "TLS alert from the server: record_overflow (22)" in err

    j = _json(_register(cloud, tmp_path, "mfl-bypass-json", "--max-fragment", 1024, "--timeout",
                        "10", "--json", env=env))
    assert j["status"] == "TLS_FRAGMENT_LENGTH_TOO_SMALL"
    assert j["alert"] == 22 and j["alert_name"] == "record_overflow"
    assert j["available"] == 1024 and j["needed"] > 1024
    assert j["bytes_sent"] > 1024  # this time the message was sent
