"""An independent producer of observer audit trails (docs/INTEGRITY.md), written from the format document only:
Python's json for the canonical form (events with ASCII member names and no fractions), hashlib for SHA-256 and the
RFC 6962 tree, the `cryptography` package for Ed25519 and the signed note. Usage: make_trail.py OUT.jsonl EVENTS EVERY.
Prints the verifier key string."""
import base64, hashlib, json, sys
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives import serialization
n, every = int(sys.argv[2]), int(sys.argv[3])
out = open(sys.argv[1], "w", encoding="utf-8")
sk = Ed25519PrivateKey.generate()
pub = sk.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
name = "bench"
kid = hashlib.sha256(name.encode() + b"\n\x01" + pub).digest()[:4]
print("%s+%s+%s" % (name, kid.hex(), base64.b64encode(b"\x01" + pub).decode()))
chain = "bench.0192f5e6-7b1c-7d2e-9f00-aa55aa55aa55"
prev = bytes(32)
stack = []  # (size, hash) perfect subtrees
def leaf(d): return hashlib.sha256(b"\0" + d).digest()
def node(a, b): return hashlib.sha256(b"\1" + a + b).digest()
def root():
    r = None
    for _, h in reversed(stack):
        r = h if r is None else node(h, r)
    return r
for seq in range(1, n + 1):
    ev = {"event_id": "0192f5e6-%012x" % seq, "timestamp": "2026-11-29T16:00:00.000000Z", "service_name": "billing",
          "service_version": "1.2.3", "environment": "prod", "audit_type": "DATA_ACCESS", "action": "READ",
          "resource_type": "DOCUMENT", "resource_id": "doc-%d" % seq, "description": "read of a patient record by the triage agent \u00e9\n",
          "actor": {"actor_id": "user-%d" % (seq % 97), "actor_type": "USER", "email": "u%d@example.com" % (seq % 97), "roles": ["clinician"]},
          "outcome": "SUCCESS", "severity": "INFO", "metadata": {"tokens": seq * 7, "flow_id": "flow-%d" % (seq // 10)},
          "schema_version": "1.0"}
    integ = {"chain_id": chain, "seq": seq, "prev_hash": prev.hex()}
    if seq == 1: integ["start"] = "new"
    ev["integrity"] = integ
    h = hashlib.sha256(json.dumps(ev, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()).digest()
    integ["hash"] = h.hex()
    out.write(json.dumps(ev, separators=(",", ":")) + "\n")
    prev = h
    size, node_h = 1, leaf(h)
    while stack and stack[-1][0] == size:
        s, left = stack.pop(); node_h = node(left, node_h); size *= 2
    stack.append((size, node_h))
    if seq % every == 0 or seq == n:
        r = root()
        body = "observer-audit/%s\n%d\n%s\ntimestamp 2026-11-29T16:00:00Z\n" % (chain, seq, base64.b64encode(r).decode())
        sig = sk.sign(body.encode())
        note = body + "\n\u2014 %s %s\n" % (name, base64.b64encode(kid + sig).decode())
        out.write(json.dumps({"record_type": "checkpoint", "chain_id": chain, "size": seq, "root": r.hex(),
                              "timestamp": "2026-11-29T16:00:00Z", "note": note}, separators=(",", ":"), ensure_ascii=False) + "\n")
out.close()
