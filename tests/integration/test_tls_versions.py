"""TLS versions as Azure splits them (PROTOCOL.md, "TLS"; Microsoft, "IoT Hub endpoints", TLS
1.3-enabled endpoints): DPS and a hub's classic name speak TLS 1.2 only, the hub's device host
name {hub}.device.{suffix} also 1.3. A build with TLS 1.3 (desktop) offers 1.3 only where Azure
speaks it, so against the local cloud's default RSA shape it provisions as it is; offered 1.3
everywhere (--tls13), the RSA server signs its TLS 1.2 key exchange with RSA-PSS, which mbedTLS
3.6.6 refuses, and the failure is named."""
import json
import subprocess

import pytest

from conftest import BUILD, device_args, enroll, tether


def desktop():
    path = BUILD / "tether-desktop"
    if not path.exists():
        pytest.skip(f"{path.name} not built")
    return path


def provision_hub_args(cloud, reg_id, tmp_path):
    """Registers reg_id (X.509) and returns `mqtt pub` options for a telemetry message on its
    hub, all but --host: the hub is dialled at 127.0.0.1, named by --host for SNI and checks."""
    cred = enroll(cloud, "x509-individual", reg_id)
    tether("register", *device_args(cloud, reg_id, cred, tmp_path / reg_id), check=True)
    return ["--port", cloud.port, "--connect-to", "127.0.0.1", "--cafile", cloud.ca,
            *cred, "--client-id", reg_id, "--username",
            f"{cloud.hub}/{reg_id}/?api-version=2021-04-12", "--topic",
            f"devices/{reg_id}/messages/events/", "--qos", "1", "--message", "tls13"]


def test_desktop_provisions_against_the_azure_rsa_shape_as_it_is(cloud, tmp_path):
    cred = enroll(cloud, "x509-individual", "tls-default")
    p = subprocess.run([str(desktop()), "register",
                        *map(str, device_args(cloud, "tls-default", cred, tmp_path / "s")),
                        "--json"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert json.loads(p.stdout.splitlines()[-1])["assigned_hub"] == cloud.hub


def test_tls13_to_a_tls12_rsa_server_is_named(cloud, tmp_path):
    cred = enroll(cloud, "x509-individual", "tls-pss")
    p = subprocess.run([str(desktop()), "register",
                        *map(str, device_args(cloud, "tls-pss", cred, tmp_path / "s")),
                        "--tls13", "--timeout", "5"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 1, p.stdout + p.stderr
    assert p.stderr.startswith("error TLS_SERVER_SIGNATURE_REJECTED during the TLS handshake"), \
        p.stderr
    assert "the server chose TLS 1.2 and signed its ServerKeyExchange with rsa_pss_rsae_sha" \
        in p.stderr
    assert "fix: offer TLS 1.2 only to this server (--tls12" in p.stderr
    assert "mbedTLS: -0x6600" in p.stderr
    # no retry storm for a fault that a retry cannot fix: one attempt, then the deadline
    assert p.stderr.count("error TLS_SERVER_SIGNATURE_REJECTED") == 1


def test_the_hub_device_host_name_gets_tls13(cloud, tmp_path):
    """The server certificate names {hub}.device.localhost, and only there does the cloud speak
    TLS 1.3; the device offers it there by default, and --tls12 still holds it to 1.2."""
    device_host = cloud.hub.replace(".", ".device.", 1)
    args = provision_hub_args(cloud, "tls-hub13", tmp_path)
    versions = {}
    for extra in ([], ["--tls12"]):
        p = subprocess.run([str(desktop()), "mqtt", "pub", "--host", device_host,
                            *map(str, args), *extra, "--json"],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stdout + p.stderr
        versions[tuple(extra)] = json.loads(p.stdout.splitlines()[-1])["tls_version"]
    assert versions == {(): "TLSv1.3", ("--tls12",): "TLSv1.2"}
    # the classic name: TLS 1.2, as Azure
    p = subprocess.run([str(desktop()), "mqtt", "pub", "--host", cloud.hub, *map(str, args),
                        "--json"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    assert json.loads(p.stdout.splitlines()[-1])["tls_version"] == "TLSv1.2"
