"""tether pki, tether cloud up / status / down, persistence across down/up."""
import json
import os
import re
import socket
import ssl
import subprocess

from conftest import run, free_port, provision, sas_token, Cloud, TOOL
from cryptography_free import read_pem_certs


def port_open(port):
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_pki_init_and_device_certificates(tmp_path):
    d = str(tmp_path / "t")
    out = json.loads(run("pki", "init", "--dir", d, "--json").stdout)
    assert out["created"] is True and os.path.exists(out["caFile"])
    again = json.loads(run("pki", "init", "--dir", d, "--json").stdout)
    assert again["created"] is False  # the PKI is kept
    for key in ("ec-p256", "ec-p384", "rsa2048"):
        dev = json.loads(run("pki", "device", f"sensor-{key}", "--key", key, "--dir", d,
                             "--json").stdout)
        text = subprocess.run(["openssl", "x509", "-noout", "-subject", "-in", dev["certificate"]],
                              capture_output=True, text=True).stdout
        assert f"CN = sensor-{key}" in text
        chain = read_pem_certs(dev["chain"])
        assert len(chain) == 2  # leaf first, then the intermediate
        assert chain[0] == read_pem_certs(dev["certificate"])[0]
        assert chain[1] == read_pem_certs(os.path.join(d, "pki", "intermediate.pem"))[0]
        # the chain verifies to the root
        v = subprocess.run(["openssl", "verify", "-CAfile", out["caFile"], "-untrusted",
                            dev["chain"], dev["certificate"]], capture_output=True, text=True)
        assert v.returncode == 0, v.stderr
    root_dev = json.loads(run("pki", "device", "r1", "--issuer", "root", "--dir", d,
                              "--json").stdout)
    assert len(read_pem_certs(root_dev["chain"])) == 1
    bad = run("pki", "device", "bad/id", "--dir", d, check=False)
    assert bad.returncode != 0 and "registration id" in bad.stderr
    bad = run("pki", "device", "x", "--key", "dsa", "--dir", d, check=False)
    assert bad.returncode != 0 and "key type" in bad.stderr


def test_help_everywhere():
    for args in (["cloud", "--help"], ["pki", "--help"], ["cloud", "up", "--help"],
                 ["cloud", "enrollment", "--help"], ["cloud", "enrollment-group", "--help"],
                 ["cloud", "hub", "--help"], ["cloud", "c2d", "--help"], ["cloud", "twin", "--help"],
                 ["cloud", "method", "--help"], ["cloud", "monitor", "--help"],
                 ["cloud", "fault", "--help"], ["cloud", "status", "--help"],
                 ["cloud", "down", "--help"], ["cloud", "device", "--help"],
                 ["cloud", "proxy", "--help"]):
        p = run(*args)
        assert "usage: tether " in p.stdout, args


def test_up_status_down_and_state_survives(tmp_path):
    c = Cloud(str(tmp_path))
    try:
        st = c.up()
        assert st["running"] is True
        assert re.fullmatch(r"0ne[0-9A-F]{8}", st["idScope"])
        assert st["endpoint"] == f"localhost:{c.port}"
        assert os.path.exists(st["caFile"])
        # the default hub is named after the id scope (unique per cloud directory)
        assert st["hubs"] == [f"tether-{st['idScope'][3:].lower()}.localhost"]
        assert port_open(c.port)
        # only loopback: the listener is bound to 127.0.0.1
        conf = open(os.path.join(c.dir, "mosquitto.conf")).read()
        assert f"listener {c.port} 127.0.0.1" in conf
        assert "use_identity_as_username false" in conf
        # server certificate carries the hub names
        txt = subprocess.run(["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in",
                              os.path.join(c.dir, "pki", "server.pem")],
                             capture_output=True, text=True).stdout
        for name in ("localhost", "127.0.0.1", st["hubs"][0]):
            assert name in txt
        # a second up is harmless
        again = json.loads(c.cli("up", "--json").stdout)
        assert again["pid"] == st["pid"]
        c.cli("enrollment", "create", "--registration-id", "keep-me", "--attestation",
              "symmetric-key")
        c.down()
        assert not port_open(c.port)
        st2 = c.cli_json("status")
        assert st2["running"] is False and st2["idScope"] == st["idScope"]
        c.up()
        assert c.scope == st["idScope"]  # the id scope is stable per directory
        assert c.hub == st["hubs"][0]  # and so is the hub name
        assert [e["registrationId"] for e in c.cli_json("enrollment", "list")] == ["keep-me"]
    finally:
        c.down()


def test_up_reports_a_busy_port(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        p = run("cloud", "up", "--dir", str(tmp_path / "c"), "--port", str(port), check=False)
        assert p.returncode == 1 and "in use" in p.stderr


def test_two_clouds_have_their_own_hub_names(tmp_path):
    """Issue 11 item 6: two clouds on one machine never share a hub name, each server certificate
    names its own hubs, and `up --json` gives the one /etc/hosts step that makes every name an
    unmodified sample dials (Azure's global DPS host and the hubs) resolve to this machine."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a, b = Cloud(str(tmp_path / "a")), Cloud(str(tmp_path / "b"))
    try:
        sa, sb = a.up(), b.up()
        assert a.hub != b.hub and not set(sa["hubs"]) & set(sb["hubs"])
        for c, st in ((a, sa), (b, sb)):
            device_host = c.hub.replace(".", ".device.", 1)  # TLS 1.3 (PROTOCOL.md, "TLS")
            assert st["hostsLine"] == ("127.0.0.1 global.azure-devices-provisioning.net "
                                       f"{c.hub} {device_host} # tether cloud {c.scope}")
            assert st["hostsStep"] == f"echo '{st['hostsLine']}' | sudo tee -a /etc/hosts"
            assert st["hostsUndo"] == f"sudo sed -i '/# tether cloud {c.scope}$/d' /etc/hosts"
            # text output: the hub and the same step
            text = c.cli("status").stdout
            assert f"hub           {c.hub} " in text and st["hostsStep"] in text
        # a device registered on each cloud is assigned that cloud's hub and connects to it by
        # name: SNI and the certificate's host name check use the hub name
        for c in (a, b):
            hub, key = provision(c, "twin-cloud-dev")
            assert hub == c.hub
            h = c.hub_device("twin-cloud-dev", password=sas_token(
                f"{hub}/devices/twin-cloud-dev", key))
            assert h.connect() == 0
            h.close()
        # the other cloud's hub name is not in this cloud's certificate: the check fails
        key_a = a.cli_json("enrollment", "show", "twin-cloud-dev")["attestation"]["symmetricKey"][
            "primaryKey"]
        h = a.hub_device("twin-cloud-dev", hub=b.hub, password=sas_token(
            f"{b.hub}/devices/twin-cloud-dev", key_a))
        rc = h.connect()
        assert isinstance(rc, ssl.SSLCertVerificationError) and "Hostname mismatch" in str(rc), rc
    finally:
        for c in (a, b):
            c.down()
