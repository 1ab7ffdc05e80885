"""tether cloud proxy: forwards, and breaks connections at chosen points."""
import json
import ssl
import subprocess
import time

import pytest

from conftest import TOOL, free_port, sas_token


class Proxy:
    def __init__(self, cloud, *opts):
        self.port = free_port()
        self.p = subprocess.Popen([TOOL, "cloud", "proxy", "--listen", str(self.port), "--to",
                                   f"127.0.0.1:{cloud.port}", *opts],
                                  stderr=subprocess.PIPE, text=True)
        assert "proxy listening" in self.p.stderr.readline()

    def stop(self):
        self.p.terminate()
        self.p.wait(timeout=5)


@pytest.fixture
def proxy_of(cloud):
    made = []

    def make(*opts):
        p = Proxy(cloud, *opts)
        made.append(p)
        return p
    yield make
    for p in made:
        p.stop()


def dps_through(cloud, proxy, key, reg="px-1"):
    d = cloud.dps(reg, password=sas_token(f"{cloud.scope}/registrations/{reg}", key,
                                          skn="registration"))
    d.c._dial_port = proxy.port
    return d


def test_proxy_forwards_and_breaks(cloud, proxy_of):
    e = cloud.cli_json("enrollment", "create", "--registration-id", "px-1")
    key = e["attestation"]["symmetricKey"]["primaryKey"]
    plain = proxy_of()
    d = dps_through(cloud, plain, key)
    assert d.connect() == 0  # SNI and certificate checks still see "localhost"
    d.close()

    hello = proxy_of("--close-after-client-hello")
    d = dps_through(cloud, hello, key)
    assert isinstance(d.connect(), (ssl.SSLError, OSError))

    cut = proxy_of("--cut-after", "200", "--direction", "down")
    d = dps_through(cloud, cut, key)
    assert isinstance(d.connect(), (ssl.SSLError, OSError))

    slow = proxy_of("--delay", "300")
    d = dps_through(cloud, slow, key)
    t0 = time.time()
    assert d.connect() == 0
    assert time.time() - t0 >= 0.6  # at least two delayed round trips
    d.close()

    rst = proxy_of("--reset-after", "1500")
    d = dps_through(cloud, rst, key)
    assert d.connect() == 0
    t0 = time.time()
    assert d.disconnects.get(timeout=5) is not None
    assert 0.5 < time.time() - t0 < 3
