"""The clock gate and SNTP against a real NTP server (chrony) on 127.0.0.1."""
import json
import os
import shutil
import socket
import subprocess
import time

import pytest

from conftest import TETHER, tether


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ntp_server(tmp_path_factory):
    chronyd = shutil.which("chronyd") or "/usr/sbin/chronyd"
    if not os.path.exists(chronyd):
        pytest.skip("chrony is not installed (scripts/setup installs it)")
    d = tmp_path_factory.mktemp("chrony")
    port = free_udp_port()
    conf = d / "chrony.conf"
    # A local server of stratum 10 that never touches the system clock (-x).
    conf.write_text(f"port {port}\nbindaddress 127.0.0.1\nlocal stratum 10\nallow 127.0.0.1\n"
                    f"cmdport 0\npidfile {d}/chronyd.pid\n")
    user = ["-u", "root"] if os.geteuid() == 0 else []
    proc = subprocess.Popen([chronyd, "-f", str(conf), "-x", "-d", *user],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    address = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if tether("time", "sync", "--server", address).returncode == 0:
            break
        time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("chronyd did not answer")
    yield address
    proc.terminate()
    proc.wait()


def in_1970(*args):
    """tether with its process clock at 1970 (Debian's faketime), as a device after power-up."""
    env = dict(os.environ, ASAN_OPTIONS="verify_asan_link_order=0:detect_leaks=1")
    return subprocess.run(["faketime", "1970-01-01 00:00:05", str(TETHER), *map(str, args)],
                          capture_output=True, text=True, timeout=60, env=env)


def test_sync_reports_a_small_offset(ntp_server):
    p = tether("time", "sync", "--server", ntp_server, "--json")
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    assert r["stratum"] == 10
    assert abs(r["offset_ms"]) < 2000
    assert r["clock_was_set"] is True


def test_sync_from_1970_sees_the_whole_gap(ntp_server):
    p = in_1970("time", "sync", "--server", ntp_server, "--json")
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    assert r["clock_was_set"] is False
    assert abs(r["offset_ms"] - time.time() * 1000) < 60_000


def test_nothing_answers(tmp_path):
    p = tether("time", "sync", "--server", f"127.0.0.1:{free_udp_port()}")
    assert p.returncode == 1
    assert p.stderr.startswith("error ")


def test_clock_gate_stops_tls_and_sntp_opens_it(ntp_server, broker, pki):
    key, crt = pki.device("clock-dev")
    args = ["mqtt", "pub", "--host", "localhost", "--port", broker.port, "--cafile", pki.root,
            "--cert", crt, "--key", key, "--topic", "t/clock", "--message", "x"]
    p = in_1970(*args)
    assert p.returncode == 1
    assert p.stderr.startswith("error CLOCK_NOT_SET")
    assert "the clock reads 1970-01-01 00:00:0" in p.stderr
    assert "sync time first" in p.stderr
    ok = in_1970(*args, "--sntp-server", ntp_server, "--json")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert json.loads(ok.stdout)["status"] == "OK"
