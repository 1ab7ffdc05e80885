"""tools/modem_bridge.py, the host side of the emulated board's UART modem, driven the way the
MCU drives it (src/port/cortex-m/modem.h): one reply per request, loopback only, data both ways,
the end of a stream, the time of day, the emulation-only entropy."""
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import free_port

BRIDGE = Path(__file__).resolve().parents[2] / "tools" / "modem_bridge.py"
OK, REFUSED, DNS, CLOSED, ERROR = 0, 1, 2, 5, 7


class Mcu:
    """The MCU's side of the serial line, over the TCP socket QEMU would use."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.seq = 0

    def ask(self, kind, payload=b""):
        self.seq = (self.seq + 1) % 256
        self.s.sendall(struct.pack(">BBH", ord(kind), self.seq, len(payload)) + payload)
        head = self._read(4)
        rkind, rseq, n = struct.unpack(">BBH", head)
        assert chr(rkind) == kind.lower() and rseq == self.seq
        return self._read(n)

    def _read(self, n):
        out = b""
        while len(out) < n:
            chunk = self.s.recv(n - len(out))
            assert chunk, "the bridge closed the line"
            out += chunk
        return out

    def open(self, host, port, link=0):
        return self.ask("O", bytes([link]) + struct.pack(">H", port) + host.encode())


@pytest.fixture
def bridge(tmp_path):
    port_file = tmp_path / "port"
    p = subprocess.Popen([sys.executable, BRIDGE, "--port", "0", "--port-file", port_file],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        if port_file.exists():
            break
        time.sleep(0.05)  # waiting for it to listen, not a measurement
    yield int(port_file.read_text())
    p.terminate()
    p.wait(10)


@pytest.fixture
def echo_server():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    yield srv
    srv.close()


def test_data_both_ways_and_the_end_of_the_stream(bridge, echo_server):
    mcu = Mcu(bridge)
    assert mcu.open("localhost", echo_server.getsockname()[1]) == bytes([0, OK])
    peer, _ = echo_server.accept()
    reply = mcu.ask("W", b"\0" + b"hello")
    assert reply == bytes([0, OK]) + struct.pack(">H", 5)
    assert peer.recv(100) == b"hello"
    peer.sendall(b"x" * 700)
    got = b""
    while len(got) < 700:
        r = mcu.ask("R", b"\0" + struct.pack(">HH", 512, 1000))
        assert r[:2] == bytes([0, OK]) and len(r) - 2 <= 512
        got += r[2:]
    assert got == b"x" * 700
    # Nothing there: an empty read after the wait, not an error.
    assert mcu.ask("R", b"\0" + struct.pack(">HH", 512, 50)) == bytes([0, OK])
    peer.close()
    assert mcu.ask("R", b"\0" + struct.pack(">HH", 512, 1000)) == bytes([0, CLOSED])
    assert mcu.ask("W", b"\0abc")[:2] == bytes([0, CLOSED])
    assert mcu.ask("C", b"\0") == bytes([0, OK])


def test_loopback_only(bridge):
    mcu = Mcu(bridge)
    assert mcu.open("127.0.0.1", free_port()) == bytes([0, REFUSED])
    # A name that is not a loopback address is not dialled at all.
    assert mcu.open("example.com", 443) == bytes([0, DNS])
    assert mcu.open("192.0.2.1", 8883) == bytes([0, DNS])
    assert mcu.open("no-such-host.invalid", 8883) == bytes([0, DNS])


def test_time_of_day_entropy_and_bad_requests(bridge):
    mcu = Mcu(bridge)
    before = time.time_ns() // 1_000_000
    r = mcu.ask("T")
    after = time.time_ns() // 1_000_000
    assert r[0] == OK and before <= struct.unpack(">q", r[1:])[0] <= after
    a, b = mcu.ask("X", struct.pack(">H", 32)), mcu.ask("X", struct.pack(">H", 32))
    assert a[0] == OK and len(a) == 33 and a != b
    assert len(mcu.ask("X", struct.pack(">H", 5000))) == 1 + 256  # capped
    assert mcu.ask("Q", b"junk") == bytes([ERROR])
    assert mcu.ask("R", b"\0") == bytes([ERROR])  # malformed: too short
    # The line stays usable, and a new board (a reboot) is served by the same bridge.
    assert mcu.ask("T")[0] == OK
    mcu.s.close()
    assert Mcu(bridge).ask("T")[0] == OK
