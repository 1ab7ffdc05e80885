"""A bounded soak: `tether run` sends QoS 1 telemetry to the local cloud through
`tether cloud proxy --random`, which gives each connection its own fault (a reset after 3-45 s,
a cut after 256 B-16 KB, or 0-50 ms of delay per chunk and a reset after 10-45 s), and the
cloud restarts once midway.

Asserted: every message the device reports as sent (and acknowledged) arrives at least once.
At least once, not exactly once: a PUBACK lost in a cut makes the device send the message again
with DUP set (MQTT 3.1.1 QoS 1), and neither Mosquitto nor IoT Hub removes duplicates; the
duplicates are counted and printed. Connection attempts never exceed the cap (10 in any
60 s), and the process's memory does not grow from the first quarter to the end.

CI runs it for 150 s; TETHER_SOAK_S=N runs it for N seconds."""
import json
import os
import re
import subprocess
import threading
import time

from conftest import TETHER, device_args, enroll, finish, free_port, run_json
from scripted_server import most_in_window

SOAK_S = int(os.environ.get("TETHER_SOAK_S", "150"))
INTERVAL_MS = 500


class RandomProxy:
    def __init__(self, cloud, port, seed):
        self.starts = []  # monotonic start time of every proxied connection
        self.faults = []
        self.p = subprocess.Popen([str(TETHER), "cloud", "proxy", "--listen", str(port), "--to",
                                   f"127.0.0.1:{cloud.port}", "--random", str(seed)],
                                  stderr=subprocess.PIPE, text=True)
        assert "proxy listening" in self.p.stderr.readline()
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        for line in self.p.stderr:
            now = time.monotonic()
            m = re.search(r"proxy #\d+: .* after (\d+) ms", line)
            if m:  # logged when the connection ends: it started that long before
                self.starts.append(now - int(m.group(1)) / 1000.0)
            elif ": fault " in line:
                self.faults.append(line.strip())

    def stop(self):
        self.p.terminate()
        self.p.wait(timeout=5)


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def test_soak_through_random_faults_and_a_cloud_restart(cloud, tmp_path):
    reg = "dev-soak"
    cred = enroll(cloud, "x509-individual", reg)
    port = free_port()
    args = device_args(cloud, reg, cred, tmp_path / "s")
    # Register through the proxy's address, without faults, so the stored result dials it.
    plain = subprocess.Popen([str(TETHER), "cloud", "proxy", "--listen", str(port), "--to",
                              f"127.0.0.1:{cloud.port}"], stderr=subprocess.PIPE, text=True)
    assert "proxy listening" in plain.stderr.readline()
    via = [a if not str(a).startswith("127.0.0.1:") else f"127.0.0.1:{port}" for a in args]
    try:
        p, r, _ = run_json(TETHER, "register", *via)
        assert p.returncode == 0, p.stdout + p.stderr
    finally:
        plain.terminate()
        plain.wait(timeout=5)
    registered = cloud.registrations(reg)

    # The cloud keeps the last 100 messages per device (50 s of them): read them every 20 s.
    stored = {}

    def collect():
        p = cloud.cli("monitor", "--device", reg, "--all", "--count", "1000", "--timeout", "1",
                      "--json", check=False)
        for line in p.stdout.splitlines():
            if line.strip():
                m = json.loads(line)
                stored[(m["receivedUtc"], m["payload"])] = m["payload"]

    proxy = RandomProxy(cloud, port, seed=int(os.environ.get("TETHER_SOAK_SEED", "7")))
    count = SOAK_S * 1000 // INTERVAL_MS
    # Under AddressSanitizer freed memory sits in a quarantine that only grows: without it the
    # process's RSS shows the program's own memory.
    env = dict(os.environ, ASAN_OPTIONS=(os.environ.get("ASAN_OPTIONS", "") +
                                         ":quarantine_size_mb=0").lstrip(":"))
    run = subprocess.Popen([str(TETHER), "run", *map(str, via), "--message", "soak-{n}",
                            "--count", str(count), "--interval", str(INTERVAL_MS), "--json"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        samples = []
        start = time.monotonic()
        restarted = False
        while run.poll() is None and time.monotonic() - start < SOAK_S * 3 + 300:
            time.sleep(2)
            if run.poll() is None:
                samples.append((time.monotonic() - start, rss_kb(run.pid)))
            if len(samples) % 10 == 0:
                collect()
            if not restarted and time.monotonic() - start > SOAK_S / 2:
                cloud.down()
                time.sleep(2)
                cloud.up()
                restarted = True
        out, err = finish(run, 60)
    finally:
        if run.poll() is None:
            run.kill()
        proxy.stop()

    assert run.returncode == 0, out[-3000:] + err
    summary = json.loads(out.splitlines()[-1])
    assert summary["sent"] == count and summary["unacknowledged"] == 0, summary

    collect()
    got = list(stored.values())
    missing = {f"soak-{n}" for n in range(1, count + 1)} - set(got)
    duplicates = len(got) - len(set(got))
    attempts = most_in_window(proxy.starts, 60.0)
    quarter = [kb for t, kb in samples if t >= SOAK_S / 4]
    print(f"soak {SOAK_S} s: {count} sent, {len(set(got))} distinct arrived, {duplicates} "
          f"duplicates, {len(proxy.starts)} connections ({attempts} at most in 60 s), "
          f"{summary['connects']} connects, RSS {quarter[0] if quarter else 0} -> "
          f"{samples[-1][1] if samples else 0} kB")
    assert not missing, sorted(missing)[:20]
    assert attempts <= 10
    assert cloud.registrations(reg) == registered  # faults and a restart: no new registration
    # Memory: no growth from the first quarter to the end (some slack for the allocator), and
    # the TLS heap's peak over every reconnect is one handshake's: nothing kept across them.
    assert quarter and max(quarter) <= quarter[0] + 512, samples
    assert summary["heap_peak"] <= summary["handshake_heap_peak"] + 1024, summary
