"""CPU per telemetry message (bench/run imports this): N QoS 1 messages over TLS 1.2 to the same
plain Mosquitto, same payload, with tether (`mqtt pub`, profile esp-idf), libmosquitto
(clients/mosq_pub.c) and Eclipse Paho C (clients/paho_pub.c); 32 messages in flight for each.

Per-message figures are marginal: each client runs with N_SMALL and N_LARGE messages, and the
difference is divided by N_LARGE - N_SMALL, so process start, TLS handshake and connect drop out.
  instructions: valgrind --tool=callgrind, all threads (repeatable on a noisy machine)
  messages/s:   wall clock, natively, median of three runs of each count
"""
import json
import os
import re
import statistics
import subprocess
import time

N_SMALL, N_LARGE = 100, 1100
PAYLOAD = '{"temperature":21.5,"humidity":48,"seq":1}'


def commands(build, mosq, cloud, cred, n):
    cert, key = str(cred[0]), str(cred[1])
    host = build / "host"
    return {
        "tether": [str(host / "tether-plain-esp-idf"), "mqtt", "pub", "--host", "localhost",
                   "--connect-to", "127.0.0.1", "--port", str(mosq.port), "--cafile",
                   str(cloud.ca), "--cert", cert, "--key", key, "--topic", "bench/cpu",
                   "--message", PAYLOAD, "--qos", "1", "--count", str(n), "--json"],
        "libmosquitto": [str(host / "mosq_pub"), "localhost", str(mosq.port), str(cloud.ca),
                         cert, key, "bench/cpu", PAYLOAD, str(n)],
        "paho-c": [str(host / "paho_pub"), "localhost", str(mosq.port), str(cloud.ca), cert,
                   key, "bench/cpu", PAYLOAD, str(n)],
    }


def wall(cmd):
    t0 = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed: {p.stdout}{p.stderr}")
    return time.monotonic() - t0


def instructions(cmd, out):
    p = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *cmd],
                       capture_output=True, text=True, timeout=1800)
    if p.returncode != 0:
        raise RuntimeError(f"callgrind {cmd[0]} failed: {p.stderr[-2000:]}")
    total = 0
    for f in os.listdir(os.path.dirname(out)):  # one file per thread with --separate-threads
        pass
    m = re.search(r"Collected : (\d+)", p.stderr)
    if m:
        return int(m.group(1))
    for line in open(out):
        if line.startswith("summary:") or line.startswith("totals:"):
            total = int(line.split()[1])
    return total


def measure(build, work, mosq, cloud, configs, log):
    cred = next(c[4] for c in configs if c[0] == "x86_64" and c[2] == "ec")
    small = commands(build, mosq, cloud, cred, N_SMALL)
    large = commands(build, mosq, cloud, cred, N_LARGE)
    rows = {}
    for name in small:
        if not os.path.exists(small[name][0]):
            log(f"  {name}: not built, skipped")
            continue
        log(f"  {name}: callgrind {N_SMALL} and {N_LARGE} messages ...")
        i_small = instructions(small[name], str(work / f"cg-{name}-small.out"))
        i_large = instructions(large[name], str(work / f"cg-{name}-large.out"))
        per_msg = (i_large - i_small) / (N_LARGE - N_SMALL)
        t_small = statistics.median(wall(small[name]) for _ in range(3))
        t_large = statistics.median(wall(large[name]) for _ in range(3))
        rate = (N_LARGE - N_SMALL) / max(t_large - t_small, 1e-6)
        rows[name] = {"instructions_per_message": round(per_msg),
                      "instructions_total_small": i_small, "instructions_total_large": i_large,
                      "messages_per_second": round(rate), "seconds_small": round(t_small, 3),
                      "seconds_large": round(t_large, 3)}
    base = rows.get("tether")
    lines = ["| client | instructions / message | vs tether | messages / s | vs tether |",
             "| --- | ---: | ---: | ---: | ---: |"]
    for name, r in rows.items():
        ri = r["instructions_per_message"] / base["instructions_per_message"] if base else 0
        rr = r["messages_per_second"] / base["messages_per_second"] if base else 0
        lines.append(f"| {name} | {r['instructions_per_message']:,} | {ri:.2f}x | "
                     f"{r['messages_per_second']:,} | {rr:.2f}x |")
    return {"rows": rows, "n_small": N_SMALL, "n_large": N_LARGE, "payload": PAYLOAD,
            "table": "\n".join(lines)}
