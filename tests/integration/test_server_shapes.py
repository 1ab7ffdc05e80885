"""Profiles against a server shaped like Azure's (tether cloud up --server-shape): the server
ignores max_fragment_length as Azure DPS does, so a profile provisions only when its input
buffer takes the server's largest handshake record; `tether doctor --offline` says so before
a device is flashed. Figures (heap) are in BENCHMARKS.md; here only what a user would check:
provisioned or not, and with which status."""
import json
import subprocess

import pytest

from conftest import BUILD, device_args, enroll, run_json, tether


def binary(profile):
    path = BUILD / f"tether-{profile}"
    if not path.exists():
        pytest.skip(f"{path.name} not built (configure with -DTETHER_ALL_PROFILES=ON)")
    return path


class ShapedCloud:
    def __init__(self, d, shape):
        from conftest import free_port
        self.dir = d
        self.port = free_port()
        tether("cloud", "up", "--dir", d, "--port", self.port, "--server-shape", shape,
               "--retry-after", "0", check=True)
        status = json.loads(tether("cloud", "status", "--dir", d, "--json").stdout)
        assert status["serverShape"] == shape
        self.scope = status["idScope"]
        # one root, as the azure profiles advise
        self.ca = d / "pki" / ("root.pem" if shape == "compact" else f"{shape}-root.pem")

    def cli(self, *args, check=True):
        return tether("cloud", *args, "--dir", self.dir, check=check)

    def down(self):
        tether("cloud", "down", "--dir", self.dir)


@pytest.fixture(params=["azure-rsa", "azure-ecc"])
def shaped(request, tmp_path):
    c = ShapedCloud(tmp_path / "cloud", request.param)
    c.shape = request.param
    yield c
    c.down()


# Which profile provisions against which shape (the table in README.md and BENCHMARKS.md).
PROVISIONS = {
    ("azure-rsa", "azure"): "OK", ("azure-rsa", "tight"): "OK", ("azure-rsa", "esp-idf"): "OK",
    ("azure-rsa", "minimal"): "TLS_RECORD_TOO_LARGE",
    ("azure-rsa", "azure-ecc"): "TLS_CA_PARSE_FAILED",  # no RSA: G2 cannot even be read
    ("azure-ecc", "azure-ecc"): "OK", ("azure-ecc", "minimal"): "OK",
    ("azure-ecc", "azure"): "OK",
}


@pytest.mark.parametrize("profile", ["azure", "azure-ecc", "minimal", "tight"])
def test_profile_provisions_against_shape_or_says_why(shaped, tmp_path, profile):
    want = PROVISIONS.get((shaped.shape, profile))
    if want is None:
        pytest.skip("not in the table")
    reg_id = f"shape-{profile}"
    args = device_args(shaped, reg_id, enroll(shaped, "x509-individual", reg_id),
                       tmp_path / "dev.state")
    p = subprocess.run([str(binary(profile)), "register", *map(str, args), "--json"],
                       capture_output=True, text=True, timeout=90)
    lines = [json.loads(line) for line in p.stdout.splitlines() if line.strip()]
    # a set-up failure (the CA file) is told on stderr, a connection failure in the JSON
    status = lines[-1]["status"] if lines else p.stderr.split()[1]
    assert status == want, p.stdout + p.stderr
    if want == "OK":
        p, r, _ = run_json(binary(profile), "run", *args, "--message", "x", "--count", "1")
        assert r["status"] == "OK" and r["sent"] == 1, p.stdout + p.stderr


@pytest.mark.parametrize("profile,endpoint,fits", [
    ("minimal", "global.azure-devices-provisioning.net", False),
    ("azure", "global.azure-devices-provisioning.net", True),
    ("azure", "myhub.azure-devices.net", True),
    ("azure-ecc", "myhub.azure-devices.net", False),
])
def test_doctor_knows_azure_without_network(profile, endpoint, fits):
    p = subprocess.run([str(binary(profile)), "doctor", "--offline", "--endpoint", endpoint,
                        "--registration-id", "dev-1", "--json"],
                       capture_output=True, text=True, timeout=30)
    r = json.loads(p.stdout)
    checks = {c["check"]: c for c in r["checks"]}
    assert checks["server-records"]["result"] == ("PASS" if fits else "FAIL"), r
    assert "3397 B" in checks["server-records"]["detail"]
    assert "network" not in checks  # nothing was dialled
    assert p.returncode == (0 if fits else 1)
    if fits:
        # 3,456-byte buffer: the largest C2D payload under Azure's topic for "dev-1"
        assert "receives cloud-to-device messages of up to" in checks["largest-message"]["detail"]


def test_doctor_shape_option(tmp_path):
    p = subprocess.run([str(binary("azure-ecc")), "doctor", "--offline", "--server-shape",
                        "azure-ecc", "--json"], capture_output=True, text=True, timeout=30)
    checks = {c["check"]: c for c in json.loads(p.stdout)["checks"]}
    assert checks["server-records"]["result"] == "PASS"
    assert "2023 B" in checks["server-records"]["detail"]
    p = subprocess.run([str(binary("azure-ecc")), "doctor", "--offline", "--server-shape",
                        "azure-rsa", "--json"], capture_output=True, text=True, timeout=30)
    checks = {c["check"]: c for c in json.loads(p.stdout)["checks"]}
    assert checks["server-crypto"]["result"] == "FAIL"  # no RSA in azure-ecc


def run_events(bin_path, args, seconds):
    p = subprocess.run([str(bin_path), "run", *map(str, args), "--duration", str(seconds),
                        "--json"], capture_output=True, text=True, timeout=120)
    return p, [json.loads(line) for line in p.stdout.splitlines() if line.strip()]


def test_largest_c2d_message_is_what_doctor_says(tmp_path):
    """A hub that ignores fragment length sends one MQTT packet as one record: the azure
    profile receives the C2D payload doctor announces, and a larger one closes the
    connection with TLS_RECORD_TOO_LARGE."""
    bin_path = binary("azure")
    cloud = ShapedCloud(tmp_path / "cloud", "azure-rsa")
    try:
        reg_id = "big-c2d"
        args = device_args(cloud, reg_id, enroll(cloud, "x509-individual", reg_id),
                           tmp_path / "dev.state")
        assert run_json(bin_path, "register", *args)[1]["status"] == "OK"
        p = subprocess.run([str(bin_path), "doctor", "--offline", "--server-shape", "azure-rsa",
                            "--registration-id", reg_id, "--json"], capture_output=True,
                           text=True, timeout=30)
        detail = {c["check"]: c for c in json.loads(p.stdout)["checks"]}["largest-message"]
        import re
        n = int(re.search(r"messages of up to (\d+) B", detail["detail"]).group(1))
        record = int(re.search(r"record of at most (\d+) B", detail["detail"]).group(1))
        cloud.cli("c2d", "send", reg_id, "x" * n)
        p, events = run_events(bin_path, args, 3)
        c2d = [e for e in events if e.get("event") == "c2d"]
        assert p.returncode == 0 and c2d and len(c2d[0]["payload"]) == n, p.stdout + p.stderr
        cloud.cli("c2d", "send", reg_id, "x" * (record + 100))  # 100 B over one record
        p, events = run_events(bin_path, args, 3)
        # the connection closes on the record, the device reconnects, the hub sends it again
        causes = {e.get("cause") for e in events if e.get("event") == "disconnected"}
        assert causes == {"TLS_RECORD_TOO_LARGE"}, p.stdout
        assert events[-1]["c2d_received"] == 0 and events[-1]["connects"] >= 2
    finally:
        cloud.down()


def test_azure_profile_keeps_only_the_root_in_use(tmp_path):
    """azure parses the roots when it looks for the issuer and keeps that one only: the local
    cloud's three-root ca.pem costs the same heap as the one root; a CA file without the
    server's root still fails, naming the roots it holds."""
    bin_path = binary("azure")
    cloud = ShapedCloud(tmp_path / "cloud", "azure-rsa")
    try:
        peaks = {}
        for ca in ("azure-rsa-root.pem", "ca.pem"):
            reg_id = f"roots-{ca.split('.')[0]}"
            args = device_args(cloud, reg_id, enroll(cloud, "x509-individual", reg_id),
                               tmp_path / f"{reg_id}.state")
            args[args.index("--cafile") + 1] = cloud.dir / "pki" / ca
            p, r, _ = run_json(bin_path, "register", *args)
            assert r["status"] == "OK", p.stdout + p.stderr
            peaks[ca] = r["heap_peak"]
        assert peaks["ca.pem"] == peaks["azure-rsa-root.pem"], peaks
        args[args.index("--cafile") + 1] = cloud.dir / "pki" / "azure-ecc-root.pem"
        p = subprocess.run([str(bin_path), "register", "--force", *map(str, args)],
                           capture_output=True, text=True, timeout=90)
        assert p.returncode == 1 and "TLS_SERVER_CERT_UNTRUSTED" in p.stderr, p.stderr
        assert "trusted roots: C=US, O=tether local cloud, OU=www.tether.invalid, " \
               "CN=tether G3 shape" in p.stderr, p.stderr
    finally:
        cloud.down()


def test_azure_profile_output_buffer_limits_the_device_chain(tmp_path):
    """azure's 1,280-byte output buffer holds the Certificate message of an EC P-256 leaf and
    its intermediate (tested above), not that of an RSA-4096 leaf (mbedTLS cannot split it)."""
    cloud = ShapedCloud(tmp_path / "cloud", "azure-rsa")
    try:
        tether("pki", "device", "rsa-dev", "--dir", cloud.dir, "--key", "rsa4096", check=True)
        cloud.cli("enrollment", "create", "--registration-id", "rsa-dev", "--attestation",
                  "x509", "--cert", cloud.dir / "devices" / "rsa-dev.pem")
        devices = cloud.dir / "devices"
        args = device_args(cloud, "rsa-dev", ["--cert", devices / "rsa-dev.chain.pem", "--key",
                                              devices / "rsa-dev.key"], tmp_path / "s")
        p, r, _ = run_json(binary("azure"), "register", *args)
        assert r["status"] == "TLS_CERT_CHAIN_TOO_LARGE", p.stdout + p.stderr
    finally:
        cloud.down()
