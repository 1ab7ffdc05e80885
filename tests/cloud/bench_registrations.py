#!/usr/bin/python3
"""Figure for the closing note: N sequential X.509 registrations (individual enrollments, the
full DPS flow: CONNECT with a client certificate, SUBSCRIBE, register, poll until assigned,
DISCONNECT) from the Paho client, and the broker's memory after them.

    TETHER_BUILD=build /usr/bin/python3 tests/cloud/bench_registrations.py [N] [retry-after]
"""
import json
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from conftest import Cloud  # noqa: E402


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    retry = sys.argv[2] if len(sys.argv) > 2 else "1"
    tmp = tempfile.mkdtemp(prefix="tether-bench-")
    c = Cloud(tmp)
    try:
        c.up("--retry-after", retry)
        certs = []
        for i in range(n):
            reg = f"bench-{i:03d}"
            dev = c.pki_device(reg)
            c.cli("enrollment", "create", "--registration-id", reg, "--cert", dev["certificate"])
            certs.append((reg, dev))
        rss_before = rss_kb(c.pid())
        t0 = time.time()
        for reg, dev in certs:
            status, res, _ = c.register(reg, cert=dev["chain"], key=dev["key"])
            assert status == 200 and res["status"] == "assigned", res
        elapsed = time.time() - t0
        rss_after = rss_kb(c.pid())
        print(json.dumps({"registrations": n, "retryAfterSeconds": int(retry),
                          "seconds": round(elapsed, 2),
                          "perRegistrationMs": round(1000 * elapsed / n, 1),
                          "brokerRssKbBefore": rss_before, "brokerRssKbAfter": rss_after}))
    finally:
        c.down()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
