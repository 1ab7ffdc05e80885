"""Heap in use over one DPS registration, one line per profile (bench/run imports this).
Runs regtrace-<profile> (x86-64 and, when built, armhf under qemu-arm) against the local cloud
and writes bench/heap.svg directly (no gnuplot)."""
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from xml.sax.saxutils import escape

PROFILES = [("desktop", []), ("esp-idf", []), ("tight", []), ("minimal", [])]
COLORS = {"desktop": "#d62728", "esp-idf": "#1f77b4", "tight": "#2ca02c", "minimal": "#9467bd"}
QEMU = ["qemu-arm", "-L", "/usr/arm-linux-gnueabihf"]


def measure(build, work, cloud, log):
    out = {}
    arch = "armhf" if (build / "armhf" / "regtrace-tight").exists() else "host"
    for profile, extra in PROFILES:
        exe = build / arch / f"regtrace-{profile}"
        if not exe.exists():
            continue
        reg_id = f"bench-trace-{profile}"
        cert, key = cloud.device(reg_id, "ec-p256")
        cmd = [*(QEMU if arch == "armhf" else []), str(exe), "localhost", str(cloud.port),
               "127.0.0.1", cloud.scope, reg_id, str(cloud.ca), str(cert), str(key), *extra]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if p.returncode != 0:
            raise RuntimeError(f"regtrace {profile}: {p.stdout}{p.stderr}")
        out[profile] = json.loads(p.stdout)
        log(f"  heap timeline {profile} ({arch}): {len(out[profile]['steps'])} steps")
    return {"arch": "armhf" if arch == "armhf" else "x86_64", "profiles": out}


def svg(timeline, path):
    profiles = timeline["profiles"]
    if not profiles:
        return
    W, H, L, R, T, B = 1040, 520, 80, 240, 50, 190
    labels = max((p["steps"] for p in profiles.values()), key=len)
    labels = [s["step"] for s in labels]
    n = len(labels)
    top = max(s["peak"] for p in profiles.values() for s in p["steps"])
    ymax = ((top // 10240) + 1) * 10240
    x = lambda i: L + (W - L - R) * i / max(n - 1, 1)
    y = lambda v: T + (H - T - B) * (1 - v / ymax)
    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
         f'font-family="sans-serif" font-size="12">',
         f'<rect width="{W}" height="{H}" fill="white"/>',
         f'<text x="{W / 2 - 80}" y="24" font-size="15" text-anchor="middle">Heap in use over a DPS '
         f'registration, EC P-256 device, {timeline["arch"]} (solid: in use; dashed: peak so far)</text>']
    for v in range(0, ymax + 1, 10240):
        o.append(f'<line x1="{L}" x2="{W - R}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#ddd"/>')
        o.append(f'<text x="{L - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v // 1024} KB</text>')
    for i, lab in enumerate(labels):
        o.append(f'<line x1="{x(i):.1f}" x2="{x(i):.1f}" y1="{T}" y2="{H - B}" stroke="#f0f0f0"/>')
        o.append(f'<text transform="translate({x(i) + 4:.1f},{H - B + 8}) rotate(50)">'
                 f'{escape(lab)}</text>')
    o.append(f'<line x1="{L}" x2="{L}" y1="{T}" y2="{H - B}" stroke="black"/>')
    o.append(f'<line x1="{L}" x2="{W - R}" y1="{H - B}" y2="{H - B}" stroke="black"/>')
    for k, (name, p) in enumerate(profiles.items()):
        c = COLORS.get(name, "black")
        pts = " ".join(f"{x(i):.1f},{y(s['in_use']):.1f}" for i, s in enumerate(p["steps"]))
        pk = " ".join(f"{x(i):.1f},{y(s['peak']):.1f}" for i, s in enumerate(p["steps"]))
        o.append(f'<polyline points="{pts}" fill="none" stroke="{c}" stroke-width="2"/>')
        o.append(f'<polyline points="{pk}" fill="none" stroke="{c}" stroke-width="1" '
                 f'stroke-dasharray="4,3"/>')
        for i, s in enumerate(p["steps"]):
            o.append(f'<circle cx="{x(i):.1f}" cy="{y(s["in_use"]):.1f}" r="2.5" fill="{c}">'
                     f'<title>{escape(name)} {escape(s["step"])}: {s["in_use"]} B in use, peak '
                     f'{s["peak"]} B</title></circle>')
        peak = max(s["peak"] for s in p["steps"])
        ly = T + 20 + 22 * k
        o.append(f'<line x1="{W - R + 15}" x2="{W - R + 40}" y1="{ly}" y2="{ly}" stroke="{c}" '
                 f'stroke-width="2"/>')
        o.append(f'<text x="{W - R + 46}" y="{ly + 4}">{escape(name)} (peak {peak:,} B)</text>')
    o.append("</svg>")
    Path(path).write_text("\n".join(o) + "\n")


LEVERS = ["window-4", "window-3", "cbc", "fp-off", "sha256-only"]
# On the azure profile against the Azure RSA shape (bench/CMakeLists.txt AZURE_LEVERS).
AZURE_LEVERS = ["in-4096", "fixed-buffers", "window-3", "cbc", "sha256-only"]


def instructions(build, cloud, name, work, ca=None, tag=None):
    """Instructions of one whole registration (process start to exit) by the x86-64 build of
    the same configuration, counted by valgrind callgrind: what a lever costs in time, as a
    figure that does not move with the machine's load. None without valgrind."""
    exe = build / "host" / f"regtrace-{name}"
    if not exe.exists() or shutil.which("valgrind") is None:
        return None
    reg_id = "bench-lever-" + re.sub(r"[^A-Za-z0-9-]+", "-", tag or name).strip("-") + "-x86"
    cert, key = cloud.device(reg_id, "ec-p256")
    p = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={work}/cg.{name}",
                        str(exe), "localhost", str(cloud.port), "127.0.0.1", cloud.scope, reg_id,
                        str(ca or cloud.ca), str(cert), str(key)],
                       capture_output=True, text=True, timeout=600)
    m = re.search(r"Collected : (\d+)", p.stderr)
    return int(m.group(1)) if m and p.returncode == 0 else None


def levers(build, work, cloud, log, base="minimal", levers_of=None, extra=()):
    """A profile with each lever of bench/config/lever-*.h: registration heap peak and heap
    while connected (after Finished), on armhf when built, else x86-64. `extra`: further rows
    as (name, executable config, CA file), e.g. the same profile given a bundle of roots."""
    levers_of = LEVERS if levers_of is None else levers_of
    arch = "armhf" if (build / "armhf" / f"regtrace-{base}-{levers_of[0]}").exists() else "host"
    rows = []
    configs = [(n, n, None) for n in [base] + [f"{base}-{l}" for l in levers_of]] + list(extra)
    for name, exe_name, ca in configs:
        exe = build / arch / f"regtrace-{exe_name}"
        if not exe.exists():
            continue
        reg_id = "bench-lever-" + re.sub(r"[^A-Za-z0-9-]+", "-", name).strip("-")
        cert, key = cloud.device(reg_id, "ec-p256")
        cmd = [*(QEMU if arch == "armhf" else []), str(exe), "localhost", str(cloud.port),
               "127.0.0.1", cloud.scope, reg_id, str(ca or cloud.ca), str(cert), str(key)]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        try:
            r = json.loads(p.stdout)
        except ValueError:
            rows.append({"config": name, "status": "failed", "detail": p.stderr[-300:]})
            continue
        steps = r["steps"]
        # Connected: the first step after the handshake (its credentials are freed by then).
        fin = [s for s in steps if s["step"] == "MQTT connected, register sent"][:1]
        rows.append({"config": name, "status": r["status"],
                     "peak": max(s["peak"] for s in steps),
                     "connected": fin[-1]["in_use"] if fin else None,
                     "credentials": next((s["in_use"] for s in steps
                                          if s["step"] == "credentials parsed"), None)})
        rows[-1]["instructions"] = instructions(build, cloud, exe_name, work, ca, name)
        log(f"  lever {name} ({arch}): {rows[-1]}")
    return {"arch": "armhf" if arch == "armhf" else "x86_64", "rows": rows}
