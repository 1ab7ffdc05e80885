"""Each failure a device meets ends in its own named status, with the numbers, never a bare code."""
import json
import socket

import pytest

from conftest import Broker, free_port, run, tether


def pub(broker_port, pki, dev, *extra, cafile=None, host="localhost"):
    key, crt = dev
    args = ["mqtt", "pub", "--host", host, "--port", broker_port,
            "--cafile", cafile or pki.root, "--topic", "t/x", "--message", "x"]
    if dev:
        args += ["--cert", crt, "--key", key]
    return tether(*args, *extra)


@pytest.fixture(scope="module")
def dev(pki):
    return pki.device("fail-dev")


def failure(p):
    assert p.returncode == 1, p.stdout + p.stderr
    assert "-0x" not in p.stderr.split("\n")[0], "a bare code must never lead the message"
    return p.stderr


def test_wrong_trust_store(broker, pki, dev):
    err = failure(pub(broker.port, pki, dev, cafile=pki.other))
    assert err.startswith("error TLS_SERVER_CERT_UNTRUSTED during the TLS handshake")
    assert "NOT_TRUSTED" in err
    assert "issued by: CN=tether test root" in err
    assert "fix:" in err and "mbedTLS: -0x2700" in err


def test_expired_server_certificate(make_broker, pki, dev):
    key, crt = pki.leaf("expired-server", "localhost", pki.root_key, pki.root,
                        san="DNS:localhost", days=30, when="2020-01-01 00:00:00")
    broker = make_broker(cert=crt, key=key)
    err = failure(pub(broker.port, pki, dev))
    assert err.startswith("error TLS_SERVER_CERT_EXPIRED")
    assert "EXPIRED" in err


def test_server_certificate_not_yet_valid(make_broker, pki, dev):
    """The device clock behind the server certificate's notBefore (a common field failure: a
    clock that was never synced, or a certificate rolled out ahead of time)."""
    import datetime
    future = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=400)
    key, crt = pki.leaf("future-server", "localhost", pki.root_key, pki.root,
                        san="DNS:localhost", days=30, when=future.strftime("%Y-%m-%d %H:%M:%S"))
    broker = make_broker(cert=crt, key=key)
    err = failure(pub(broker.port, pki, dev))
    assert err.startswith("error TLS_SERVER_CERT_NOT_YET_VALID"), err
    assert "FUTURE" in err


def test_hostname_mismatch(broker, pki, dev):
    err = failure(pub(broker.port, pki, dev, "--connect-to", "127.0.0.1", host="wrong.example"))
    assert err.startswith("error TLS_HOSTNAME_MISMATCH")
    assert "CN_MISMATCH" in err


def test_client_certificate_from_unknown_ca(broker, pki):
    stranger = pki.device("stranger", issuer=(pki.other_key, pki.other))
    err = failure(pub(broker.port, pki, stranger))
    assert err.startswith("error TLS_CLIENT_CERT_REJECTED")
    assert "TLS alert from the server: unknown_ca" in err


def test_no_client_certificate(broker, pki):
    p = tether("mqtt", "pub", "--host", "localhost", "--port", broker.port, "--cafile", pki.root,
               "--topic", "t/x", "--message", "x")
    err = failure(p)
    assert err.startswith("error TLS_CLIENT_CERT_REQUIRED")


def test_nothing_listening(pki, dev):
    err = failure(pub(free_port(), pki, dev))
    assert err.startswith("error CONNECT_REFUSED")
    assert "Connection refused" in err


def test_connack_not_authorized(make_broker, pki, dev):
    broker = make_broker()
    conf = broker.conf.read_text().replace("allow_anonymous true", "allow_anonymous false")
    broker.stop()
    broker.conf.write_text(conf)
    broker.start()
    err = failure(pub(broker.port, pki, dev))
    assert err.startswith("error MQTT_CONNACK_NOT_AUTHORIZED")
    assert "CONNACK 5" in err


def test_heap_limit_below_the_need(broker, pki, dev):
    err = failure(pub(broker.port, pki, dev, "--heap-limit", "12000"))
    assert err.startswith("error TLS_ALLOC_FAILED")
    assert "under a heap limit of 12000 bytes" in err


def test_encrypted_key(broker, pki):
    key, crt = pki.device("locked")
    locked = pki.dir / "locked.enc.key"
    run("openssl", "pkey", "-in", key, "-aes256", "-passout", "pass:s3cret", "-out", locked)
    ok = pub(broker.port, pki, (locked, crt), "--key-password", "s3cret")
    assert ok.returncode == 0, ok.stderr
    assert failure(pub(broker.port, pki, (locked, crt))).startswith(
        "error TLS_KEY_PASSWORD_REQUIRED")
    assert failure(pub(broker.port, pki, (locked, crt), "--key-password", "nope")).startswith(
        "error TLS_KEY_PASSWORD_WRONG")


def test_key_that_does_not_match(broker, pki, dev):
    other_key, _ = pki.device("mismatch")
    _, crt = dev
    assert failure(pub(broker.port, pki, (other_key, crt))).startswith("error TLS_KEY_MISMATCH")


def test_missing_file(broker, pki, dev):
    err = failure(pub(broker.port, pki, dev, cafile="/nonexistent/ca.pem"))
    assert err.startswith("error FILE_NOT_FOUND")


def test_chain_too_large_for_the_output_buffer(make_broker, pki):
    """The seed's -0x7500: a client chain over the 4 KB output buffer of the esp-idf profile."""
    version = tether("--version").stdout
    out_len = int(version.split("output buffer ")[1].split()[0])
    root = pki.ca("big-root", "big root", kind="rsa4096")
    i1 = pki.ca("big-int1", "big intermediate 1", kind="rsa4096", issuer=root)
    i2 = pki.ca("big-int2", "big intermediate 2", kind="rsa4096", issuer=i1)
    key, leaf = pki.leaf("big-dev", "big-dev", i2[0], i2[1], kind="rsa4096")
    chain = pki.dir / "big-dev.chain.pem"
    # Leaf, both intermediates and the root: what a device sends when it sends "everything".
    chain.write_text(leaf.read_text() + i2[1].read_text() + i1[1].read_text() + root[1].read_text())
    both = pki.dir / "both-roots.pem"
    both.write_text(pki.root.read_text() + root[1].read_text())
    broker = make_broker(cafile=both)
    p = pub(broker.port, pki, (key, chain), "--json")
    if out_len >= 16384:
        assert p.returncode == 0, p.stdout
        return
    assert p.returncode == 1
    r = json.loads(p.stdout)
    assert r["status"] == "TLS_CERT_CHAIN_TOO_LARGE"
    assert r["stage_name"] == "client certificate"
    assert r["available"] == out_len
    assert r["needed"] > out_len
    text = pub(broker.port, pki, (key, chain)).stderr
    assert f"{r['needed']}-byte Certificate message" in text
    assert f"output buffer holds {out_len}" in text
