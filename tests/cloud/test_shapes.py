"""The server a device meets: `tether cloud up --server-shape` presents a chain shaped like
Azure's (sizes, key types, signature hashes), and DPS ignores the TLS max_fragment_length
extension as Azure DPS does, while hubs honour it only when told to (IoT Hub's preview).

Checked from the outside with `openssl s_client`, as a user would: the certificates the
server sends, the extensions of its ServerHello, and the length of every record it sends."""
import re
import subprocess

import pytest

DPS_NAME = "global.azure-devices-provisioning.net"


def s_client(cloud, servername, *extra):
    p = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{cloud.port}",
                        "-servername", servername, "-CAfile", cloud.ca, "-tls1_2", *extra],
                       input="", capture_output=True, text=True, timeout=30)
    return p.stdout + p.stderr


def received_records(out):
    """Lengths of the records the server sent (s_client -msg prints each header in hex)."""
    lines = out.splitlines()
    lengths = []
    for i, line in enumerate(lines[:-1]):
        if line.startswith("<<<") and "RecordHeader" in line:
            b = lines[i + 1].split()
            lengths.append(int(b[3], 16) << 8 | int(b[4], 16))
    return lengths


def server_chain(cloud, servername=DPS_NAME, *extra):
    """The certificates the server sent, as (DER size, `openssl x509 -text` output)."""
    out = s_client(cloud, servername, "-showcerts", *extra)
    pems = re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", out, re.S)
    chain = []
    for pem in pems:
        der = subprocess.run(["openssl", "x509", "-outform", "der"], input=pem.encode(),
                             capture_output=True, check=True).stdout
        text = subprocess.run(["openssl", "x509", "-noout", "-text"], input=pem,
                              capture_output=True, text=True, check=True).stdout
        chain.append((len(der), text))
    return out, chain


def cert_size(path):
    return len(subprocess.run(["openssl", "x509", "-in", path, "-outform", "der"],
                              capture_output=True, check=True).stdout)


def restart(cloud, *extra):
    cloud.down()
    return cloud.up(*extra)


def test_default_shape_is_azure_rsa(cloud):
    assert cloud.status["serverShape"] == "azure-rsa"
    out, chain = server_chain(cloud)
    assert "Verify return code: 0 (ok)" in out
    assert [size for size, _ in chain] == [1875, 1509]  # Azure's leaf and issuing CA
    leaf, issuing = chain[0][1], chain[1][1]
    assert "Public-Key: (2048 bit)" in leaf and "Public-Key: (4096 bit)" in issuing
    assert "Signature Algorithm: sha384WithRSAEncryption" in leaf
    assert "Signature Algorithm: sha384WithRSAEncryption" in issuing
    assert f"DNS:{DPS_NAME}" in leaf and f"DNS:{cloud.hub}" in leaf
    assert "CA Issuers" in leaf and "CRL Distribution Points" in leaf
    assert cert_size(f"{cloud.dir}/pki/azure-rsa-root.pem") == 914  # DigiCert Global Root G2
    # The Certificate message (3,397 B with its header) arrives in one record.
    assert 3397 in received_records(s_client(cloud, DPS_NAME, "-msg"))


@pytest.mark.parametrize("name", ["localhost", DPS_NAME])
def test_dps_ignores_fragment_length(cloud, name):
    out = s_client(cloud, name, "-maxfraglen", "512", "-msg", "-tlsextdebug")
    assert "Verify return code: 0 (ok)" in out
    assert "max fragment length" not in out  # not echoed in the ServerHello
    assert max(received_records(out)) > 512


def test_hubs_honour_fragment_length_only_when_told(cloud):
    out = s_client(cloud, cloud.hub, "-maxfraglen", "512", "-msg", "-tlsextdebug")
    assert "max fragment length" not in out and max(received_records(out)) > 512
    restart(cloud, "--hub-fragment-length", "honour")
    assert cloud.cli_json("status")["hubFragmentLength"] == "honour"
    out = s_client(cloud, cloud.hub, "-maxfraglen", "512", "-msg", "-tlsextdebug")
    assert "Verify return code: 0 (ok)" in out
    assert "max fragment length" in out
    assert max(received_records(out)) <= 512
    out = s_client(cloud, "localhost", "-maxfraglen", "512", "-msg", "-tlsextdebug")
    assert "max fragment length" not in out and max(received_records(out)) > 512


def test_ecc_shape(cloud):
    assert restart(cloud, "--server-shape", "azure-ecc")["serverShape"] == "azure-ecc"
    out, chain = server_chain(cloud)
    assert "Verify return code: 0 (ok)" in out
    assert len(chain) == 2
    for _, text in chain:
        assert "ASN1 OID: secp384r1" in text
        assert "Signature Algorithm: ecdsa-with-SHA384" in text
    assert cert_size(f"{cloud.dir}/pki/azure-ecc-root.pem") in (578, 579, 580)  # G3: 579
    # ECDSA-only suites: a client offering only RSA-signed suites gets no handshake.
    rsa_only = s_client(cloud, DPS_NAME, "-cipher", "ECDHE-RSA-AES128-GCM-SHA256")
    assert "alert handshake failure" in rsa_only
    assert "Cipher is ECDHE-ECDSA-" in out


def test_compact_shape_and_shape_is_remembered(cloud):
    restart(cloud, "--server-shape", "compact")
    restart(cloud)
    assert cloud.status["serverShape"] == "compact"
    out, chain = server_chain(cloud, cloud.hub)
    assert "Verify return code: 0 (ok)" in out
    assert len(chain) == 2 and all(size < 700 for size, _ in chain)
    assert "ASN1 OID: prime256v1" in chain[0][1]


def test_shape_option_checked(cloud):
    p = cloud.cli("up", "--server-shape", "azure", check=False)
    assert p.returncode != 0 and "azure-rsa, azure-ecc or compact" in p.stderr


def test_shape_of_a_running_cloud_is_not_changed_behind_its_back(cloud):
    p = cloud.cli("up", "--port", str(cloud.port), "--server-shape", "compact", check=False)
    assert p.returncode != 0 and "stop it first" in p.stderr
    assert cloud.cli_json("status")["serverShape"] == "azure-rsa"
    p = cloud.cli("up", "--port", str(cloud.port), "--server-shape", "azure-rsa", check=False)
    assert p.returncode == 0  # the same shape: already running, nothing to change
