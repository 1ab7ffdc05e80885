"""The forum thread's failures, reproduced against the local cloud and its fault proxy; each
ends in a named status with the numbers that explain it (issue: diagnostics, item 6)."""
import json
import os
import subprocess
import time

import pytest

from conftest import BUILD, TETHER, Pki, device_args, enroll, finish, free_port, run, tether


def bin_for(profile):
    path = BUILD / f"tether-{profile}"
    if not path.exists():
        pytest.skip(f"{path.name} not built")
    return path


@pytest.fixture
def big_chain(cloud, tmp_path):
    """(a): an RSA-4096 leaf with two RSA-4096 intermediates and the root, about 5.3 KB."""
    pki = Pki(tmp_path / "bigpki")
    root = pki.ca("root4k", "big root", kind="rsa4096")
    i1 = pki.ca("int4k-1", "big intermediate 1", kind="rsa4096", issuer=root)
    i2 = pki.ca("int4k-2", "big intermediate 2", kind="rsa4096", issuer=i1)
    key, leaf = pki.leaf("seed-big", "seed-big", i2[0], i2[1], kind="rsa4096")
    chain = tmp_path / "seed-big.chain.pem"
    chain.write_text(leaf.read_text() + i2[1].read_text() + i1[1].read_text() + root[1].read_text())
    cloud.cli("enrollment", "create", "--registration-id", "seed-big", "--attestation", "x509",
              "--cert", leaf)
    return ["--cert", chain, "--key", key]


def test_a_chain_too_large_for_the_esp_idf_output_buffer(cloud, tmp_path, big_chain):
    args = device_args(cloud, "seed-big", big_chain, tmp_path / "s")
    doctor = subprocess.run([str(bin_for("esp-idf")), "doctor", *map(str, args)],
                            capture_output=True, text=True, timeout=120)
    assert doctor.returncode == 1
    fail = [l for l in doctor.stdout.splitlines() if l.startswith("FAIL")]
    assert len(fail) == 1, doctor.stdout
    assert "> TLS output buffer 4096 B (profile esp-idf)" in fail[0]
    assert "at least 5632 B" in fail[0]
    assert "SKIP  handshake" in doctor.stdout

    reg = subprocess.run([str(bin_for("esp-idf")), "register", *map(str, args)],
                         capture_output=True, text=True, timeout=120)
    assert reg.returncode == 1
    assert reg.stderr.startswith(
        "error TLS_CERT_CHAIN_TOO_LARGE during the TLS handshake (client certificate, stage 5 of 7)")
    assert "output buffer holds 4096" in reg.stderr
    assert "mbedTLS: -0x6A00" in reg.stderr

    # desktop, whose 16 KB output buffer holds the chain, provisions as it is: it offers TLS 1.3
    # only to a hub's device host name, never to DPS (tests/integration/test_tls_versions.py)
    ok = subprocess.run([str(bin_for("desktop")), "register", *map(str, args), "--json"],
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert json.loads(ok.stdout)["assigned_hub"] == cloud.hub


def test_b_server_closes_after_the_client_hello(cloud, tmp_path):
    cred = enroll(cloud, "x509-individual", "seed-closed")
    listen = free_port()
    proxy = subprocess.Popen([str(TETHER), "cloud", "proxy", "--listen", str(listen), "--to",
                              f"127.0.0.1:{cloud.port}", "--close-after-client-hello"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        args = device_args(cloud, "seed-closed", cred, tmp_path / "s")
        args[args.index("--connect-to") + 1] = f"127.0.0.1:{listen}"
        p = tether("register", *args, "--timeout", "3")
    finally:
        proxy.terminate()
        proxy.wait()
    assert p.returncode == 1
    assert p.stderr.startswith("error TLS_PEER_CLOSED_IN_HANDSHAKE during the TLS handshake "
                               "(ServerHello, stage 3 of 7)"), p.stderr
    assert "closed right after the ClientHello" in p.stderr
    assert "mbedTLS: -0x7280" in p.stderr


def test_c_heap_limit_below_the_need(cloud, tmp_path):
    cred = enroll(cloud, "x509-individual", "seed-heap")
    p = tether("register", *device_args(cloud, "seed-heap", cred, tmp_path / "s"),
               "--heap-limit", "20000", "--timeout", "5")
    assert p.returncode == 1
    assert p.stderr.startswith("error TLS_ALLOC_FAILED during the TLS handshake")
    assert "under a heap limit of 20000 bytes" in p.stderr
    assert "mbedTLS asked for " in p.stderr
    assert "-0x7F00" in p.stderr


def test_d_clock_at_1970(cloud, tmp_path):
    cred = enroll(cloud, "x509-individual", "seed-clock")
    env = dict(os.environ, ASAN_OPTIONS="verify_asan_link_order=0")
    p = subprocess.run(["faketime", "1970-01-01 00:00:05", str(TETHER), "register",
                        *map(str, device_args(cloud, "seed-clock", cred, tmp_path / "s"))],
                       capture_output=True, text=True, timeout=60, env=env)
    assert p.returncode == 1
    assert p.stderr.startswith("error CLOCK_NOT_SET")
    assert "the clock reads 1970-01-01" in p.stderr


def test_e_server_certificate_from_an_unknown_ca(cloud, tmp_path, pki):
    cred = enroll(cloud, "x509-individual", "seed-ca")
    args = device_args(cloud, "seed-ca", cred, tmp_path / "s")
    args[args.index("--cafile") + 1] = pki.other  # a root that did not sign the cloud
    p = tether("register", *args, "--timeout", "5")
    assert p.returncode == 1
    assert p.stderr.startswith("error TLS_SERVER_CERT_UNTRUSTED during the TLS handshake "
                               "(server certificate, stage 4 of 7)")
    # the top of the chain the cloud sends (azure-rsa shape) names its G2-shaped root
    assert "issued by: C=US, O=tether local cloud, OU=www.tether.invalid, CN=tether G2 shape" \
        in p.stderr
    assert "trusted roots: CN=someone else's root" in p.stderr
    assert "NOT_TRUSTED" in p.stderr


def test_f_throttling_progress_says_retry_after(cloud, tmp_path):
    cred = enroll(cloud, "sk-individual", "seed-busy")
    cloud.cli("fault", "set", "dps-throttle", "--seconds", "3")
    reg = subprocess.Popen([str(TETHER), "register",
                            *map(str, device_args(cloud, "seed-busy", cred, tmp_path / "s"))],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(4)
    cloud.cli("fault", "clear")
    out, err = finish(reg, 90)
    assert reg.returncode == 0, out + err
    assert "429 throttled; server asks to retry after 3.0 s" in out


def test_c_doctor_measures_the_smallest_heap_limit(cloud, tmp_path):
    import re
    cred = enroll(cloud, "x509-individual", "seed-limit")
    args = device_args(cloud, "seed-limit", cred, tmp_path / "s")
    doctor = tether("doctor", *args, "--no-register", "--json", timeout=120)
    assert doctor.returncode == 0, doctor.stdout
    checks = {c["check"]: c for c in json.loads(doctor.stdout)["checks"]}
    limit = int(re.search(r"(\d+) bytes", checks["heap-limit"]["detail"]).group(1))
    ok = tether("register", *args, "--heap-limit", limit, "--timeout", "10")
    assert ok.returncode == 0, ok.stderr
    short = tether("register", *args, "--heap-limit", limit - 1024, "--force", "--timeout", "5")
    assert short.returncode == 1 and short.stderr.startswith("error TLS_ALLOC_FAILED")
