#!/usr/bin/python3
"""Independent known-answer vectors for package shamir.

Computes Shamir shares over GF(2^8) mod 0x11B with plain integer
arithmetic (no code shared with the Go implementation) and writes
kat.json. The "random" stream is SHA-256 in counter mode over a seed, the
same stream the Go test feeds SplitWithRand: 4 bytes of set id, then for
each secret byte the k-1 coefficients of degrees 1..k-1.

Run: python3 kat.py > kat.json
"""
import hashlib, json

def mul(a, b):
    p = 0
    while b:
        if b & 1:
            p ^= a
        a <<= 1
        if a & 0x100:
            a ^= 0x11B
        b >>= 1
    return p

def stream(seed):
    i = 0
    while True:
        for byte in hashlib.sha256(seed + i.to_bytes(4, 'big')).digest():
            yield byte
        i += 1

def split(secret, n, k, seed):
    r = stream(seed)
    set_id = bytes(next(r) for _ in range(4))
    ys = [bytearray() for _ in range(n)]
    for s in secret:
        coef = [s] + [next(r) for _ in range(k - 1)]
        for i in range(n):
            x = i + 1
            y, xp = 0, 1
            for c in coef:          # sum c_d * x^d
                y ^= mul(c, xp)
                xp = mul(xp, x)
            ys[i].append(y)
    out = []
    for i in range(n):
        body = bytes([1, k, i + 1]) + set_id + bytes(ys[i])
        out.append((body + hashlib.sha256(body).digest()[:4]).hex())
    return out

vectors = []
for name, secret, n, k in [
    ("root-3-of-5", bytes(range(32)), 5, 3),
    ("root-2-of-2", bytes.fromhex("ff" * 32), 2, 2),
    ("short-5-of-9", b"minikms", 9, 5),
    ("one-byte-255", b"\x00", 255, 255),
]:
    seed = name.encode()
    vectors.append({"name": name, "seed": seed.hex(), "secret": secret.hex(),
                    "n": n, "k": k, "shares": split(secret, n, k, seed)})
print(json.dumps(vectors, indent=1))
