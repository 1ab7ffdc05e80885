"""Integration fixtures: a PKI made with openssl, and a real Mosquitto on 127.0.0.1 with TLS."""
import os
import json
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

BUILD = Path(os.environ.get("TETHER_BUILD", Path(__file__).resolve().parents[2] / "build"))
TETHER = BUILD / "tether"


def run(*args, **kw):
    return subprocess.run([str(a) for a in args], check=True, capture_output=True, text=True, **kw)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Pki:
    """Certificates as a device team would have them: a root, an intermediate, a server
    certificate for localhost, device certificates of several key types, and the bad ones the
    tests need (an unknown CA, an expired server, a server for another name)."""

    def __init__(self, d: Path):
        self.dir = d
        d.mkdir(parents=True, exist_ok=True)
        self.root_key, self.root = self.ca("root", "tether test root")
        self.server_key, self.server = self.leaf("server", "localhost", self.root_key, self.root,
                                                 san="DNS:localhost,IP:127.0.0.1")
        self.other_key, self.other = self.ca("other", "someone else's root")

    def key(self, name, kind="ec-p256"):
        path = self.dir / f"{name}.key"
        if kind.startswith("ec"):
            curve = {"ec-p256": "prime256v1", "ec-p384": "secp384r1"}[kind]
            run("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", f"ec_paramgen_curve:{curve}",
                "-out", path)
        else:
            bits = kind[3:]
            run("openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", f"rsa_keygen_bits:{bits}",
                "-out", path)
        return path

    def ca(self, name, cn, kind="ec-p256", issuer=None):
        key = self.key(name, kind)
        crt = self.dir / f"{name}.crt"
        if issuer is None:
            run("openssl", "req", "-x509", "-new", "-key", key, "-subj", f"/CN={cn}", "-days", "3650",
                "-addext", "basicConstraints=critical,CA:TRUE", "-addext",
                "keyUsage=critical,keyCertSign,cRLSign", "-out", crt)
        else:
            self._sign(name, key, crt, cn, issuer[0], issuer[1], ca=True)
        return key, crt

    def _sign(self, name, key, crt, cn, ca_key, ca_crt, ca=False, san=None, days=825, when=None):
        csr = self.dir / f"{name}.csr"
        ext = self.dir / f"{name}.ext"
        lines = ["basicConstraints=critical,CA:TRUE" if ca else "basicConstraints=CA:FALSE"]
        if ca:
            lines.append("keyUsage=critical,keyCertSign,cRLSign")
        else:
            lines.append("extendedKeyUsage=serverAuth,clientAuth")
        if san:
            lines.append(f"subjectAltName={san}")
        ext.write_text("\n".join(lines) + "\n")
        run("openssl", "req", "-new", "-key", key, "-subj", f"/CN={cn}", "-out", csr)
        cmd = ["openssl", "x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key,
               "-CAcreateserial", "-days", str(days), "-extfile", ext, "-out", crt]
        if when:  # a certificate from the past: sign it with the clock set back
            cmd = ["faketime", when] + cmd
        run(*cmd)

    def leaf(self, name, cn, ca_key, ca_crt, kind="ec-p256", san=None, days=825, when=None):
        key = self.key(name, kind)
        crt = self.dir / f"{name}.crt"
        self._sign(name, key, crt, cn, ca_key, ca_crt, san=san, days=days, when=when)
        return key, crt

    def device(self, name, kind="ec-p256", issuer=None):
        ca_key, ca_crt = issuer or (self.root_key, self.root)
        return self.leaf(name, name, ca_key, ca_crt, kind=kind)


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    return Pki(tmp_path_factory.mktemp("pki"))


class Broker:
    """A real Mosquitto with TLS on 127.0.0.1, client certificates required."""

    def __init__(self, d: Path, pki: Pki, cert=None, key=None, persistence=False, cafile=None,
                 address="127.0.0.1"):
        self.dir = d
        self.address = address
        self.port = free_port()
        self.conf = d / "mosquitto.conf"
        self.log = d / "mosquitto.log"
        lines = [
            f"listener {self.port} {address}",
            f"cafile {cafile or pki.root}",
            f"certfile {cert or pki.server}",
            f"keyfile {key or pki.server_key}",
            "require_certificate true",
            "allow_anonymous true",
            f"log_dest file {self.log}",
            "log_type all",
            # Run as root (CI), Mosquitto would switch to its own user, which cannot read the
            # test's private temporary directories; keep the caller's user instead.
            "user root" if os.geteuid() == 0 else "",
        ]
        if persistence:
            lines += ["persistence true", f"persistence_location {d}/", "autosave_interval 1"]
        self.conf.write_text("\n".join(lines) + "\n")
        self.proc = None
        self.start()

    def start(self):
        self.proc = subprocess.Popen(["mosquitto", "-c", str(self.conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection((self.address, self.port), timeout=0.2).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    log = self.log.read_text() if self.log.exists() else "(no log)"
                    raise RuntimeError("mosquitto exited: " + log)
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


@pytest.fixture
def broker(tmp_path, pki):
    b = Broker(tmp_path, pki)
    yield b
    b.stop()


@pytest.fixture
def make_broker(tmp_path, pki):
    made = []

    def make(**kw):
        d = tmp_path / f"broker{len(made)}"
        d.mkdir()
        b = Broker(d, pki, **kw)
        made.append(b)
        return b

    yield make
    for b in made:
        b.stop()


def finish(proc, timeout=60):
    """Waits for a process whose pipes were partly read with readline() and returns the rest
    of (stdout, stderr). communicate() would read the descriptors directly and lose lines
    already buffered by readline()."""
    try:
        proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return (proc.stdout.read() if proc.stdout else ""), (proc.stderr.read() if proc.stderr else "")


def tether(*args, timeout=60, check=False):
    """Runs build/tether; returns the CompletedProcess."""
    p = subprocess.run([str(TETHER)] + [str(a) for a in args], capture_output=True, text=True,
                       timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"tether {args} failed:\n{p.stdout}\n{p.stderr}")
    return p


class Cloud:
    """`tether cloud` in a temporary directory on a free port."""

    def __init__(self, d):
        self.dir = d
        self.port = free_port()
        p = tether("cloud", "up", "--dir", d, "--port", self.port, "--ws-port", free_port(),
                   "--json", check=True)
        self.info = json.loads(p.stdout)
        status = self.json("status")
        self.scope = status["idScope"]
        self.ca = status["caFile"]
        self.hub = status["hubs"][0]  # the cloud's own default hub (named after its id scope)

    def cli(self, *args, check=True):
        return tether("cloud", *args, "--dir", self.dir, check=check)

    def json(self, *args):
        return json.loads(self.cli(*args, "--json").stdout)

    def down(self):
        tether("cloud", "down", "--dir", self.dir)

    def up(self):
        tether("cloud", "up", "--dir", self.dir, "--port", self.port, check=True)

    def registrations(self, device_id):
        return self.json("device", "show", device_id)["registrations"]

    def telemetry(self, device_id, count):
        p = self.cli("monitor", "--device", device_id, "--all", "--count", str(count),
                     "--timeout", "15", "--json")
        return [json.loads(line) for line in p.stdout.splitlines() if line.strip()]


@pytest.fixture
def cloud(tmp_path):
    c = Cloud(tmp_path / "cloud")
    yield c
    c.down()


def enroll(cloud, kind, reg_id):
    """Enrolls a device of one of the four attestations; returns its credential options."""
    if kind == "x509-individual":
        tether("pki", "device", reg_id, "--dir", cloud.dir, check=True)
        cloud.cli("enrollment", "create", "--registration-id", reg_id, "--attestation", "x509",
                  "--cert", cloud.dir / "devices" / f"{reg_id}.pem")
    elif kind == "x509-group":
        tether("pki", "device", reg_id, "--dir", cloud.dir, "--issuer", "intermediate", check=True)
        cloud.cli("enrollment-group", "create", "--group-id", f"g-{reg_id}", "--attestation",
                  "x509", "--ca", cloud.dir / "pki" / "intermediate.pem")
    elif kind == "sk-individual":
        e = cloud.json("enrollment", "create", "--registration-id", reg_id, "--attestation",
                       "symmetric-key")
        return ["--symmetric-key", e["attestation"]["symmetricKey"]["primaryKey"]]
    elif kind == "sk-group":
        g = cloud.json("enrollment-group", "create", "--group-id", f"g-{reg_id}",
                       "--attestation", "symmetric-key")
        return ["--group-key", g["attestation"]["symmetricKey"]["primaryKey"]]
    devices = cloud.dir / "devices"
    return ["--cert", devices / f"{reg_id}.chain.pem", "--key", devices / f"{reg_id}.key"]


def device_args(cloud, reg_id, cred, state):
    return ["--endpoint", f"localhost:{cloud.port}", "--connect-to", f"127.0.0.1:{cloud.port}",
            "--id-scope", cloud.scope, "--registration-id", reg_id, "--cafile", cloud.ca,
            "--state", state, *cred]


def run_json(bin_path, *args, timeout=90):
    p = subprocess.run([str(bin_path), *map(str, args), "--json"], capture_output=True, text=True,
                       timeout=timeout)
    lines = [line for line in p.stdout.splitlines() if line.strip()]
    assert lines, p.stderr
    return p, json.loads(lines[-1]), [json.loads(line) for line in lines[:-1]]


