"""CPU per telemetry message (bench/run imports this): N QoS 1 messages over TLS 1.2 to the same
plain Mosquitto, same payload, with tether (`mqtt pub`, profile esp-idf), libmosquitto
(clients/mosq_pub.c), Eclipse Paho C's synchronous client (clients/paho_pub.c) and its
asynchronous client (clients/paho_async_pub.c); 32 messages in flight for each.

Per-message figures are marginal: each client runs with a small and a large count, and the
difference is divided by the difference of the counts, so process start, TLS handshake and
connect drop out. Neither figure is deterministic (how often a client wakes up depends on the
timing of the broker's PUBACKs), so each is measured several times and given with its spread;
a comparison says "within noise" when the two spreads overlap.
  instructions: valgrind --tool=callgrind, all threads, RUNS runs of each count
  messages/s:   wall clock, natively, WALL_RUNS runs of each count; the counts are large
                (WALL_SMALL, WALL_LARGE) so that the marginal time is seconds, not milliseconds
"""
import json
import os
import re
import statistics
import subprocess
import time

N_SMALL, N_LARGE = 100, 1100
RUNS = 3
WALL_SMALL, WALL_LARGE = 1000, 21000
WALL_RUNS = 5
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
        "paho-c async": [str(host / "paho_async_pub"), "localhost", str(mosq.port),
                         str(cloud.ca), cert, key, "bench/cpu", PAYLOAD, str(n)],
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


def spread(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "runs": len(values)}


def compare(a, b, lower_is_better):
    """a against b (dicts from spread): 'better', 'worse' or 'within noise' (ranges overlap)."""
    if a["max"] >= b["min"] and b["max"] >= a["min"]:
        return "within noise"
    a_better = a["median"] < b["median"] if lower_is_better else a["median"] > b["median"]
    return "better" if a_better else "worse"


def measure(build, work, mosq, cloud, configs, log):
    cred = next(c[4] for c in configs if c[0] == "x86_64" and c[2] == "ec")
    rows = {}
    for name, cmd in commands(build, mosq, cloud, cred, 0).items():
        if not os.path.exists(cmd[0]):
            log(f"  {name}: not built, skipped")
            continue
        log(f"  {name}: callgrind {N_SMALL} and {N_LARGE} messages x {RUNS}, "
            f"wall {WALL_SMALL} and {WALL_LARGE} messages x {WALL_RUNS} ...")
        per_msg = []
        for i in range(RUNS):
            small = commands(build, mosq, cloud, cred, N_SMALL)[name]
            large = commands(build, mosq, cloud, cred, N_LARGE)[name]
            i_small = instructions(small, str(work / f"cg-{name}-small-{i}.out"))
            i_large = instructions(large, str(work / f"cg-{name}-large-{i}.out"))
            per_msg.append(round((i_large - i_small) / (N_LARGE - N_SMALL)))
        rates = []
        for _ in range(WALL_RUNS):
            t_small = wall(commands(build, mosq, cloud, cred, WALL_SMALL)[name])
            t_large = wall(commands(build, mosq, cloud, cred, WALL_LARGE)[name])
            rates.append(round((WALL_LARGE - WALL_SMALL) / max(t_large - t_small, 1e-6)))
        rows[name] = {"instructions_per_message": spread(per_msg),
                      "messages_per_second": spread(rates)}
    base = rows.get("tether")
    lines = ["| client | instructions / message (median; min..max) | tether is | "
             "messages / s (median; min..max) | tether is |",
             "| --- | ---: | --- | ---: | --- |"]
    for name, r in rows.items():
        i, m = r["instructions_per_message"], r["messages_per_second"]
        vi = compare(base["instructions_per_message"], i, True) if base and name != "tether" else ""
        vm = compare(base["messages_per_second"], m, False) if base and name != "tether" else ""
        r["tether_instructions"], r["tether_rate"] = vi, vm
        lines.append(f"| {name} | {i['median']:,} ({i['min']:,}..{i['max']:,}) | {vi} | "
                     f"{m['median']:,} ({m['min']:,}..{m['max']:,}) | {vm} |")
    return {"rows": rows, "n_small": N_SMALL, "n_large": N_LARGE, "runs": RUNS,
            "wall_small": WALL_SMALL, "wall_large": WALL_LARGE, "wall_runs": WALL_RUNS,
            "payload": PAYLOAD, "table": "\n".join(lines)}
