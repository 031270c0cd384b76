#!/usr/bin/env python3
"""Writes the seed corpus fuzz/corpus/<target>/seed-* from docs/vectors/*.json.

    python3 fuzz/make_corpus.py

- envelope_parse: every envelope of every vector file, positive and negative.
- open: the same envelopes in the `open` target's input format,
  `suite selector || topic length || topic || envelope`, where the selector is
  the suite's index in `Suite::ALL` (so each opens with the vectors' keys).
- replay_window: a few hand-written op sequences (see the target's doc).
- rekey_parse: structurally valid rekey messages (random-looking keys and an
  invalid signature: the parser does not verify).
- keyfile_check: a kind byte and a body, which the target frames as a key
  file with a valid checksum (the bodies are postcard-like guesses: the
  fuzzer finds the real structure from there).

The output is deterministic; rerun it after regenerating the vectors.
"""
import glob
import json
import os
import struct

ROOT = os.path.dirname(os.path.abspath(__file__))
VECTORS = os.path.join(ROOT, "..", "docs", "vectors")
CORPUS = os.path.join(ROOT, "corpus")
# Suite::ALL order.
SUITE_INDEX = {0x01: 0, 0x02: 1, 0x03: 2, 0x10: 3, 0x11: 4, 0x12: 5, 0x13: 6}


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def main():
    for target in ("envelope_parse", "open", "replay_window", "rekey_parse", "keyfile_check"):
        d = os.path.join(CORPUS, target)
        for old in glob.glob(os.path.join(d, "seed-*")):
            os.remove(old)
    for path in sorted(glob.glob(os.path.join(VECTORS, "*.json"))):
        with open(path) as f:
            v = json.load(f)
        if v.get("suite_id") not in SUITE_INDEX:
            continue  # not an envelope vector file (e.g. ratchet.json)
        suite = v["suite"].replace("+", "-")
        sel = SUITE_INDEX[v["suite_id"]]
        for kind in ("cases", "negative"):
            for case in v[kind]:
                env = bytes.fromhex(case["envelope"])
                topic = case["topic"].encode()
                name = f"{suite}-{case['name']}"
                write("envelope_parse", name, env)
                write("open", name, bytes([sel, len(topic)]) + topic + env)
    # replay_window: window selector, floor, then ops (delta: tag<0x80 + i16 LE;
    # absolute: tag>=0x80 + u64 LE).
    def delta(d):
        return b"\x00" + struct.pack("<h", d)

    def absolute(c):
        return b"\x80" + struct.pack("<Q", c)

    seqs = {
        "in-order": bytes([3, 0]) + b"".join(delta(1) for _ in range(40)),
        "reorder": bytes([0, 0]) + b"".join(delta(d) for d in (5, -2, -1, 3, -4, 0, -63, -64, 1)),
        "jump": bytes([1, 2]) + absolute(1000) + delta(-100) + delta(-127) + delta(-128) + absolute(5000) + delta(-1),
        "large": bytes([127, 0]) + absolute((1 << 48) - 2) + delta(1) + delta(1) + delta(-8000) + delta(-8191),
        "floor": bytes([0, 10]) + absolute(3) + absolute(10) + delta(0) + delta(-1),
    }
    for name, data in seqs.items():
        write("replay_window", name, data)

    # rekey_parse: MQRK, version 2, epoch, issued_at_ms, grace_ms, admin id,
    # removed ids (u16 count), ephemeral key, recipients (id + 48-byte wrapped secret),
    # 64-byte signature.
    def ident(b):
        return bytes([len(b)]) + b

    def rekey(removed, recipients):
        m = b"MQRK" + b"\x02" + struct.pack(">IQI", 8, 1795000000000, 60000)
        m += ident(b"admin")
        m += struct.pack(">H", len(removed)) + b"".join(ident(r) for r in removed)
        m += bytes(range(32))
        m += struct.pack(">H", len(recipients))
        for r in recipients:
            m += ident(r) + bytes([0x5a]) * 48
        return m + bytes([0xa5]) * 64

    write("rekey_parse", "one-recipient", rekey([], [b"dev1"]))
    write("rekey_parse", "removal", rekey([b"dev9", b"dev8"], [b"dev1", b"dev2", b"station"]))
    # keyfile_check: kind byte (0 keyring, 1 identity, 2 trust) + body.
    write("keyfile_check", "keyring-empty", b"\x00\x00")
    write("keyfile_check", "keyring-one", b"\x00\x01\x07\x01\x01" + bytes([0x42]) * 32 + b"\x00\x00")
    write("keyfile_check", "identity", b"\x01\x04dev1" + bytes([7]) * 64)
    write("keyfile_check", "trust-empty", b"\x02\x00\x00")


if __name__ == "__main__":
    main()
