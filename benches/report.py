#!/usr/bin/env python3
"""Prints the benchmark tables of docs/performance.md from criterion's output.

    cargo bench -p mqseal-benches --bench mqseal -- --warm-up-time 1 --measurement-time 2
    python3 benches/report.py [target/criterion]

Figures are criterion's median estimates, in ns per operation.
"""
import glob
import json
import os
import sys

root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "target", "criterion")

res = {}
for path in glob.glob(os.path.join(root, "**", "new", "benchmark.json"), recursive=True):
    with open(path) as f:
        b = json.load(f)
    with open(os.path.join(os.path.dirname(path), "estimates.json")) as f:
        e = json.load(f)
    res[(b["group_id"], b["function_id"], b.get("value_str"))] = e["median"]["point_estimate"]

SIZES = ["32", "64", "1024", "16384", "65536"]
SUITES = ["aes256gcm", "chacha20poly1305", "hmacsha256", "ed25519",
          "aes256gcm+ed25519", "chacha20poly1305+ed25519", "hmacsha256+ed25519"]
RAW = ["raw-ring-aes256gcm", "raw-ring-chacha20poly1305", "raw-ring-hmacsha256",
       "raw-ring-ed25519", "raw-dalek-ed25519", "raw-dalek-ed25519-strict", "cose-encrypt0-aes256gcm"]
# What each suite is compared with: the raw primitives it uses (default provider:
# ring AEAD/HMAC, ed25519-dalek).
BASE = {
    "aes256gcm": ["raw-ring-aes256gcm"],
    "chacha20poly1305": ["raw-ring-chacha20poly1305"],
    "hmacsha256": ["raw-ring-hmacsha256"],
    "ed25519": ["raw-dalek-ed25519"],
    "aes256gcm+ed25519": ["raw-ring-aes256gcm", "raw-dalek-ed25519"],
    "chacha20poly1305+ed25519": ["raw-ring-chacha20poly1305", "raw-dalek-ed25519"],
    "hmacsha256+ed25519": ["raw-ring-hmacsha256", "raw-dalek-ed25519"],
}


def get(group, name, size):
    return res.get((group, name, size))


def fmt(ns):
    if ns is None:
        return "–"
    if ns >= 10_000:
        return f"{ns / 1000:,.1f} µs"
    return f"{ns:,.0f} ns"


def both(name, size):
    s, o = get("seal", name, size), get("open", name, size)
    if name == "raw-dalek-ed25519-strict":  # verification only; signing as raw-dalek-ed25519
        s = get("seal", "raw-dalek-ed25519", size)
    return None if s is None or o is None else s + o


def base_sum(suite, size):
    parts = [both(b, size) for b in BASE[suite]]
    return None if None in parts else sum(parts)


print("### Seal / open, ns per message (median), and seal+open vs the raw primitives\n")
print("| suite | size | seal | open | seal+open | raw seal+open | ratio |")
print("|---|---|---|---|---|---|---|")
for suite in SUITES:
    for size in SIZES:
        s, o, t, r = get("seal", suite, size), get("open", suite, size), both(suite, size), base_sum(suite, size)
        ratio = f"{t / r:.2f}×" if t and r else "–"
        print(f"| {suite} | {size} | {fmt(s)} | {fmt(o)} | {fmt(t)} | {fmt(r)} | {ratio} |")

print("\n### Baselines measured in the same run (seal or sign / open or verify)\n")
print("| baseline | " + " | ".join(f"{s} B" for s in SIZES) + " |")
print("|---|" + "---|" * len(SIZES))
for name in RAW:
    cells = [f"{fmt(get('seal', name, s))} / {fmt(get('open', name, s))}" for s in SIZES]
    print(f"| {name} | " + " | ".join(cells) + " |")

print("\n### Targets\n")


def target(desc, value, limit, better="<="):
    if value is None:
        print(f"- {desc}: not measured")
        return
    ok = value <= limit if better == "<=" else value >= limit
    print(f"- {desc}: **{value:.2f}×** (target {better} {limit}×): {'met' if ok else 'MISSED'}")


def ratio(a, b):
    return None if a is None or b is None else a / b


target("AES-256-GCM seal+open vs raw ring, 64 B", ratio(both("aes256gcm", "64"), both("raw-ring-aes256gcm", "64")), 1.5)
target("AES-256-GCM seal+open vs raw ring, 64 KiB", ratio(both("aes256gcm", "65536"), both("raw-ring-aes256gcm", "65536")), 1.05)
target("Ed25519 (sign-only) seal+open vs raw dalek sign+verify, 64 B", ratio(both("ed25519", "64"), both("raw-dalek-ed25519", "64")), 1.05)
target("Ed25519 (sign-only) seal+open vs raw dalek sign+verify_strict, 64 B", ratio(both("ed25519", "64"), both("raw-dalek-ed25519-strict", "64")), 1.05)
for s in ["aes256gcm+ed25519", "chacha20poly1305+ed25519", "hmacsha256+ed25519"]:
    target(f"{s} seal+open vs raw AEAD/HMAC + dalek, 64 B", ratio(both(s, "64"), base_sum(s, "64")), 1.05)
target("COSE_Encrypt0 (coset + ring) seal+open vs mqseal AES-256-GCM, 64 B", ratio(both("cose-encrypt0-aes256gcm", "64"), both("aes256gcm", "64")), 8, ">=")

# The e2e bench (its own command) writes to the same directory: not here.
other = sorted((k, v) for k, v in res.items()
               if k[0] not in ("seal", "open") and not k[0].startswith("e2e"))
if other:
    print("\n### Replay window and key derivation\n")
    print("| benchmark | time |")
    print("|---|---|")
    for (g, f, v), ns in other:
        print(f"| {g}/{f}{'/' + v if v else ''} | {fmt(ns)} |")
