"""tether mqtt pub/sub against a real Mosquitto with real TLS and client certificates."""
import json
import os
import subprocess
import time

import pytest

from conftest import TETHER, finish, run, tether


def tls_args(broker, pki, dev):
    key, crt = dev
    return ["--host", "localhost", "--port", broker.port, "--cafile", pki.root,
            "--cert", crt, "--key", key]


def mosq_tls(broker, pki, dev):
    key, crt = dev
    return ["-h", "localhost", "-p", str(broker.port), "--cafile", str(pki.root),
            "--cert", str(crt), "--key", str(key)]


@pytest.fixture(scope="module")
def dev(pki):
    return pki.device("dev-ec")


def wait_for_lines(path, want, timeout=20):
    """Lines of a file once it has `want` distinct ones, or what it has at the timeout."""
    deadline = time.monotonic() + timeout
    lines = []
    while time.monotonic() < deadline:
        lines = path.read_text().splitlines() if path.exists() else []
        if len(set(lines)) >= want:
            break
        time.sleep(0.1)
    return lines


def test_pub_reaches_mosquitto_sub(broker, pki, dev, tmp_path):
    out = tmp_path / "sub.txt"
    with out.open("w") as f:
        sub = subprocess.Popen(["mosquitto_sub", *mosq_tls(broker, pki, dev), "-t", "t/pub",
                                "-q", "1", "-i", "sub-a"], stdout=f)
    try:
        time.sleep(0.5)  # let the subscription land before publishing
        p = tether("mqtt", "pub", *tls_args(broker, pki, dev), "--topic", "t/pub", "--qos", "1",
                   "--count", "20", "--message", "msg {n}", "--json")
        assert p.returncode == 0, p.stderr
        summary = json.loads(p.stdout.splitlines()[-1])
        assert summary["status"] == "OK"
        assert summary["published"] == 20 and summary["acknowledged"] == 20
        # The heap accounting saw at least the two record buffers of the profile.
        assert summary["handshake_heap_peak"] >= summary["in_content_len"] + summary["out_content_len"]
        assert summary["heap_peak"] >= summary["handshake_heap_peak"]
        lines = wait_for_lines(out, 20)
        assert sorted(set(lines)) == sorted(f"msg {n}" for n in range(1, 21))
    finally:
        sub.terminate()
        sub.wait()


def test_sub_receives_from_mosquitto_pub(broker, pki, dev):
    sub = subprocess.Popen([str(TETHER), "mqtt", "sub", *map(str, tls_args(broker, pki, dev)),
                            "--topic", "t/sub/#", "--qos", "1", "--count", "10", "--timeout", "30"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = sub.stderr.readline()
        assert "subscribed" in line, line
        for n in range(1, 11):
            run("mosquitto_pub", *mosq_tls(broker, pki, dev), "-t", f"t/sub/{n}", "-q", "1",
                "-m", f"hello {n}")
        out, err = finish(sub, 30)
        assert sub.returncode == 0, err
        assert out.splitlines() == [f"hello {n}" for n in range(1, 11)]
        assert "received 10 message(s)" in err
        assert "heap peak" in err
    finally:
        if sub.poll() is None:
            sub.kill()


def test_qos1_survives_broker_restart(make_broker, pki, dev, tmp_path):
    broker = make_broker(persistence=True)
    out = tmp_path / "restart.txt"
    # A persistent subscriber session: the broker keeps its queue across the restart.
    with out.open("w") as f:
        sub = subprocess.Popen(["mosquitto_sub", *mosq_tls(broker, pki, dev), "-t", "t/restart",
                                "-q", "1", "-c", "-i", "restart-sub"], stdout=f)
    try:
        time.sleep(0.5)
        pub = subprocess.Popen([str(TETHER), "mqtt", "pub", *map(str, tls_args(broker, pki, dev)),
                                "--topic", "t/restart", "--qos", "1", "--count", "60",
                                "--interval", "50", "--message", "m{n}", "--json"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1.2)
        broker.stop()
        time.sleep(0.5)
        broker.start()
        out_pub, err_pub = pub.communicate(timeout=60)
        assert pub.returncode == 0, err_pub
        summary = json.loads(out_pub.splitlines()[-1])
        assert summary["reconnects"] >= 1, err_pub
        lines = wait_for_lines(out, 60)
        assert set(lines) == {f"m{n}" for n in range(1, 61)}
    finally:
        sub.terminate()
        sub.wait()


def test_large_message_is_discarded_and_the_connection_stays(broker, pki, dev):
    sub = subprocess.Popen([str(TETHER), "mqtt", "sub", *map(str, tls_args(broker, pki, dev)),
                            "--topic", "t/big", "--count", "1", "--timeout", "30"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "subscribed" in sub.stderr.readline()
        big = "x" * 100_000  # larger than the command's 64 KB receive buffer
        run("mosquitto_pub", *mosq_tls(broker, pki, dev), "-t", "t/big", "-m", big)
        run("mosquitto_pub", *mosq_tls(broker, pki, dev), "-t", "t/big", "-m", "small")
        out, err = finish(sub, 30)
        assert sub.returncode == 0, err
        assert out.splitlines() == ["small"]
        assert "MQTT_PACKET_TOO_LARGE" in err
        assert "100" in err and "discarded" in err
    finally:
        if sub.poll() is None:
            sub.kill()


def test_dead_link_is_detected_by_keepalive(broker, pki, dev):
    sub = subprocess.Popen([str(TETHER), "mqtt", "sub", *map(str, tls_args(broker, pki, dev)),
                            "--topic", "t/ka", "--keepalive", "1", "--reconnect-timeout", "0"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "subscribed" in sub.stderr.readline()
        broker.proc.send_signal(19)  # SIGSTOP: the TCP link stays up, nothing answers
        _, err = finish(sub, 30)
        assert sub.returncode == 1
        assert "MQTT_KEEPALIVE_TIMEOUT" in err
    finally:
        broker.proc.send_signal(18)  # SIGCONT so the fixture can stop it
        if sub.poll() is None:
            sub.kill()


def test_tls_version_and_fragment_length(broker, pki, dev):
    p = tether("mqtt", "pub", *tls_args(broker, pki, dev), "--topic", "t/mfl", "--message", "x",
               "--max-fragment", "1024", "--json")
    assert p.returncode == 0, p.stderr
    s = json.loads(p.stdout)
    assert s["tls_version"] in ("TLSv1.2", "TLSv1.3")
    assert s["published"] == 1


@pytest.mark.parametrize("kind", ["ec-p384", "rsa2048"])
def test_other_key_types(broker, pki, kind):
    dev = pki.device(f"dev-{kind}", kind=kind)
    p = tether("mqtt", "pub", *tls_args(broker, pki, dev), "--topic", "t/k", "--message", kind,
               "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["status"] == "OK"


def test_der_credentials(broker, pki, tmp_path):
    key, crt = pki.device("dev-der")
    der = {}
    for name, src, kind in (("ca", pki.root, "x509"), ("crt", crt, "x509"), ("key", key, "pkey")):
        der[name] = tmp_path / f"{name}.der"
        run("openssl", kind, "-in", src, "-outform", "DER", "-out", der[name])
    p = tether("mqtt", "pub", "--host", "localhost", "--port", broker.port, "--cafile", der["ca"],
               "--cert", der["crt"], "--key", der["key"], "--topic", "t/der", "--message", "x",
               "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["status"] == "OK"


def test_ipv6_loopback(make_broker, pki, dev):
    import socket
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    broker = make_broker(address="::1")
    # The name stays localhost (SNI, certificate check); the address dialled is ::1.
    p = tether("mqtt", "pub", *tls_args(broker, pki, dev), "--connect-to", "::1",
               "--topic", "t/v6", "--message", "x", "--json")
    assert p.returncode == 0, p.stderr


def test_large_server_chain_needs_fragment_length_on_small_profiles(make_broker, pki, dev, tmp_path):
    """A server chain larger than one 2 KB record: tight (4 KB input buffer) takes it only when
    the server is asked for small records, and re-assembles it; minimal (2 KB) cannot hold the
    message at all. Each failure names both sizes."""
    tight, minimal = TETHER.parent / "tether-tight", TETHER.parent / "tether-minimal"
    if not tight.exists() or not minimal.exists():
        pytest.skip("tether-tight or tether-minimal not built")
    inter = pki.ca("srv-int", "server intermediate", kind="rsa4096",
                   issuer=(pki.root_key, pki.root))
    key, crt = pki.leaf("big-server", "localhost", inter[0], inter[1], kind="rsa4096",
                        san="DNS:localhost")
    chain = tmp_path / "server-chain.pem"
    chain.write_text(crt.read_text() + inter[1].read_text())
    broker = make_broker(cert=chain, key=key)
    args = ["mqtt", "pub", *map(str, tls_args(broker, pki, dev)), "--topic", "t/mfl",
            "--message", "x", "--json"]
    ok = subprocess.run([str(tight), *args], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stdout + ok.stderr

    small = subprocess.run([str(minimal), *args], capture_output=True, text=True, timeout=60)
    assert small.returncode == 1
    r = json.loads(small.stdout)
    assert r["status"] == "TLS_HANDSHAKE_MESSAGE_TOO_LARGE", r
    assert r["stage_name"] == "server certificate"
    assert r["available"] == 2048 and r["needed"] > 2048

    bad = subprocess.run([str(minimal), *args, "--max-fragment", "none"], capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode == 1
    r = json.loads(bad.stdout)
    assert r["status"] == "TLS_RECORD_TOO_LARGE", json.dumps(r)
    assert r["available"] == 2048 and r["needed"] > 2048
