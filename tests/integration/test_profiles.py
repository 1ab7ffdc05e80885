"""Every mbedTLS profile completes a mutually authenticated handshake with Mosquitto, and the
heap it needs follows its buffer sizes (build with -DTETHER_ALL_PROFILES=ON)."""
import json
import subprocess

import pytest

from conftest import BUILD, run

PROFILES = ["desktop", "esp-idf", "tight", "minimal"]


def binary(profile):
    path = BUILD / f"tether-{profile}"
    if not path.exists():
        pytest.skip(f"{path.name} not built (configure with -DTETHER_ALL_PROFILES=ON)")
    return path


def pub_json(profile, broker, pki, dev, *extra):
    key, crt = dev
    p = run(binary(profile), "mqtt", "pub", "--host", "localhost", "--port", broker.port,
            "--cafile", pki.root, "--cert", crt, "--key", key, "--topic", "t/profile",
            "--message", "x" * 200, "--qos", "1", "--count", "5", "--json", *extra)
    return json.loads(p.stdout)


@pytest.fixture(scope="module")
def dev(pki):
    return pki.device("profile-dev")


@pytest.mark.parametrize("profile", PROFILES)
def test_profile_connects_and_reports_its_buffers(profile, broker, pki, dev):
    s = pub_json(profile, broker, pki, dev)
    assert s["status"] == "OK" and s["acknowledged"] == 5
    assert s["profile"] == profile
    expected = {"desktop": (16384, 16384), "esp-idf": (16384, 4096), "tight": (4096, 2048),
                "minimal": (2048, 2048)}[profile]
    assert (s["in_content_len"], s["out_content_len"]) == expected
    assert s["handshake_heap_peak"] >= sum(expected)
    print(f"{profile}: {s['tls_version']} handshake heap peak {s['handshake_heap_peak']} B, "
          f"{s['heap_connected']} B while connected")


def test_small_profiles_need_less_heap(broker, pki, dev):
    peaks = {p: pub_json(p, broker, pki, dev, "--tls12")["handshake_heap_peak"] for p in PROFILES}
    assert peaks["minimal"] < peaks["tight"] < peaks["esp-idf"] < peaks["desktop"], peaks


def test_desktop_speaks_tls13_on_request(broker, pki, dev):
    """TLS 1.3 goes to a hub's device host name by default (test_tls_versions.py), to any host
    with --tls13; this broker is "localhost" and speaks both."""
    assert pub_json("desktop", broker, pki, dev)["tls_version"] == "TLSv1.2"
    assert pub_json("desktop", broker, pki, dev, "--tls13")["tls_version"] == "TLSv1.3"
    assert pub_json("desktop", broker, pki, dev, "--tls12")["tls_version"] == "TLSv1.2"


def test_desktop_tls13_with_an_rsa_device_key(broker, pki):
    """TLS 1.3 signs CertificateVerify with RSA-PSS: the profile must offer it."""
    s = pub_json("desktop", broker, pki, pki.device("profile-rsa", kind="rsa2048"), "--tls13")
    assert s["status"] == "OK" and s["tls_version"] == "TLSv1.3"


def test_connected_heap_holds_no_credentials(broker, pki, dev):
    """The device's chain and key and the trust store are parsed for the handshake and freed
    after it: once connected, an RSA-4096 identity costs no more heap than an EC P-256 one."""
    rsa = pki.device("profile-rsa4096", kind="rsa4096")
    for profile in ("esp-idf", "minimal"):
        ec_s, rsa_s = pub_json(profile, broker, pki, dev), pub_json(profile, broker, pki, rsa)
        assert ec_s["status"] == rsa_s["status"] == "OK"
        assert rsa_s["handshake_heap_peak"] > ec_s["handshake_heap_peak"]
        assert rsa_s["heap_connected"] == ec_s["heap_connected"], (profile, ec_s, rsa_s)


@pytest.mark.parametrize("form", ["legacy-pem", "pkcs8"])
def test_minimal_names_a_key_it_cannot_decrypt(broker, pki, form):
    """minimal has AES-GCM suites only, so no AES-CBC to decrypt a password-protected key;
    tight has CBC and uses the same key."""
    key, crt = pki.device(f"locked-{form}")
    locked = pki.dir / f"locked-{form}.enc.key"
    if form == "legacy-pem":
        run("openssl", "ec", "-in", key, "-aes128", "-passout", "pass:s3cret", "-out", locked)
    else:
        run("openssl", "pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in", key, "-passout",
            "pass:s3cret", "-out", locked)
    s = pub_json("tight", broker, pki, (locked, crt), "--key-password", "s3cret")
    assert s["status"] == "OK"
    args = [binary("minimal"), "mqtt", "pub", "--host", "localhost", "--port", broker.port,
            "--cafile", pki.root, "--cert", crt, "--key", locked, "--key-password", "s3cret",
            "--topic", "t/profile", "--message", "x"]
    p = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=60)
    assert p.returncode == 1
    assert p.stderr.startswith("error TLS_KEY_ENCRYPTED_UNSUPPORTED"), p.stderr
    assert "openssl pkey" in p.stderr
