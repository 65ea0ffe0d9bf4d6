"""An independent checker of observer audit trails (docs/INTEGRITY.md), written from the format document only:
Python's json for the canonical form, hashlib for SHA-256 and the RFC 6962 tree, the `cryptography` package for
Ed25519. Usage: check_trail.py TRAIL.jsonl VERIFIER_KEY. Prints one line per verified checkpoint; exits 1 on any
failure."""

import base64
import hashlib
import json
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def parse_key(vkey):
    name, keyid_hex, data = vkey.split("+", 2)
    raw = base64.b64decode(data, validate=True)
    if len(raw) != 33 or raw[0] != 1:
        fail("verifier key is not 0x01 || 32-byte Ed25519 key")
    keyid = hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4]
    if keyid.hex() != keyid_hex:
        fail("key id %s re-derived as %s" % (keyid_hex, keyid.hex()))
    return name, keyid, Ed25519PublicKey.from_public_bytes(raw[1:])


def open_note(note, key):
    name, keyid, public = key
    split = note.rindex("\n\n")
    text, sigs = note[: split + 1], note[split + 2 :]
    for line in sigs.rstrip("\n").split("\n"):
        if not line.startswith("\u2014 "):
            fail("signature line without em dash")
        signer, b64 = line[2:].split(" ", 1)
        blob = base64.b64decode(b64, validate=True)
        if signer == name and blob[:4] == keyid:
            try:
                public.verify(blob[4:], text.encode())
            except InvalidSignature:
                fail("invalid signature")
            return text
    fail("no signature by the key")


def leaf(d):
    return hashlib.sha256(b"\x00" + d).digest()


def mth(leaves):
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaf(leaves[0])
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:])).digest()


def event_hash(event):
    # Canonical form for events with ASCII member names and doubles Python prints like ECMAScript (section 2).
    event = json.loads(json.dumps(event))
    del event["integrity"]["hash"]
    canonical = json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).digest()


def main():
    path, vkey = sys.argv[1], sys.argv[2]
    key = parse_key(vkey)
    hashes = {}  # chain -> {seq: hash}
    checkpoints = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line.startswith("observer-audit-fallback: "):
                line = line[len("observer-audit-fallback: ") :]
            if not line.startswith("{"):
                continue
            obj = json.loads(line)
            if obj.get("record_type") == "checkpoint":
                checkpoints.append(obj)
                continue
            integ = obj["integrity"]
            recorded = bytes.fromhex(integ["hash"])
            if event_hash(obj) != recorded:
                fail("chain %s seq %d: hash mismatch" % (integ["chain_id"], integ["seq"]))
            hashes.setdefault(integ["chain_id"], {})[integ["seq"]] = recorded
    for chain, by_seq in hashes.items():
        prev = bytes(32)
        for seq in range(1, max(by_seq) + 1):
            if seq not in by_seq:
                fail("chain %s seq %d: missing" % (chain, seq))
            # (prev_hash links are covered by the hashes; the Merkle roots below check order and completeness.)
    if not checkpoints:
        fail("no checkpoint")
    for cp in checkpoints:
        text = open_note(cp["note"], key)
        lines = text.split("\n")
        origin, size, root_b64, ts = lines[0], int(lines[1]), lines[2], lines[3]
        if origin != "observer-audit/" + cp["chain_id"] or size != cp["size"] or ts != "timestamp " + cp["timestamp"]:
            fail("checkpoint text does not match its record")
        root = base64.b64decode(root_b64, validate=True)
        if root.hex() != cp["root"]:
            fail("checkpoint root field does not match its text")
        leaves = [hashes[cp["chain_id"]][s] for s in range(1, size + 1)]
        if mth(leaves) != root:
            fail("chain %s: Merkle root of seq 1..%d differs" % (cp["chain_id"], size))
        print("OK chain %s size %d" % (cp["chain_id"], size))


main()
