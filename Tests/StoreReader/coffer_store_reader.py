#!/usr/bin/env python3
"""Independent reader of the Coffer store (store.json, format version 2, and
the log of commits after it, store.log).

Written from docs/file-format.md and docs/crypto.md alone.  It loads the
master keys, checks the header and the whole-file MAC, replays the log's
entries (checking their MAC chain), opens every record and optionally
verifies candidates against verify-only (hashed) secrets.

usage: coffer_store_reader.py STATE_DIR --key-file PATH [--key-file PATH ...]
                              [--verify NAME=CANDIDATE ...]

Needs only the standard library and the `cryptography` package.
"""

import argparse
import base64
import binascii
import hashlib
import hmac
import json
import os
import struct
import sys

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt


class Failure(Exception):
    """A reason to refuse the store; the message never holds key bytes or values."""


# ---------------------------------------------------------------- primitives

def hkdf_sha256(ikm, salt, info):
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(ikm)


def key_id_of(master_key):
    # docs/crypto.md, "Key id":
    # hex(SHA-256("coffer key id v1" || 0x00 || master_key)[0..8])
    return hashlib.sha256(b"coffer key id v1\x00" + master_key).digest()[:8].hex()


def b64(text, what):
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise Failure(f"{what} is not valid base64")


# ---------------------------------------------------------------- keys

def load_key_file(path):
    # docs/crypto.md, "Master key": 64 hex digits, either case, with an
    # optional trailing "\n" or "\r\n", or exactly 32 raw bytes.
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise Failure(f"cannot read key file {path}: {e.strerror}")
    text = data[:-2] if data.endswith(b"\r\n") else data[:-1] if data.endswith(b"\n") else data
    if len(text) == 64:
        try:
            return bytes.fromhex(text.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            pass
    if len(data) == 32:
        return data
    raise Failure(f"key file {path} is neither 64 hex digits nor 32 raw bytes")


def load_keyring(state_dir, key_files):
    keys = {}
    for path in key_files:
        key = load_key_file(path)
        keys[key_id_of(key)] = key
    # docs/file-format.md, "The state directory": master-keys lists
    # `KEYID PATH` per line, oldest first, for keys rotate-master-key added.
    listed = os.path.join(state_dir, "master-keys")
    if os.path.exists(listed):
        with open(listed, "r", encoding="utf-8") as f:
            for n, line in enumerate(f.read().splitlines(), 1):
                if not line.strip():
                    continue
                kid, sep, path = line.partition(" ")
                if not sep or len(kid) != 16 or not path.startswith("/"):
                    raise Failure(f"master-keys line {n} is not 'KEYID /path'")
                key = load_key_file(path)
                if key_id_of(key) != kid:
                    raise Failure(f"key file {path} holds key id {key_id_of(key)}, "
                                  f"master-keys lists it as {kid}")
                keys[kid] = key
    return keys


# ---------------------------------------------------------------- parsing

def no_duplicates(pairs):
    # docs/file-format.md, "The MAC": a member given twice is refused.
    obj = {}
    for k, v in pairs:
        if k in obj:
            raise Failure(f"member {k!r} given twice")
        obj[k] = v
    return obj


def only_members(obj, allowed, where):
    # docs/file-format.md, "The MAC": a member cofferd does not know is refused,
    # since the MAC would not cover it.
    if not isinstance(obj, dict):
        raise Failure(f"{where} is not an object")
    extra = sorted(set(obj) - set(allowed))
    if extra:
        raise Failure(f"unknown member {extra[0]!r} in {where}")


def need(obj, key, typ, where):
    if key not in obj:
        raise Failure(f"{where} has no {key!r}")
    v = obj[key]
    if typ is int and (not isinstance(v, int) or isinstance(v, bool)):
        raise Failure(f"{where}.{key} is not an integer")
    if typ is not int and not isinstance(v, typ):
        raise Failure(f"{where}.{key} has the wrong type")
    return v


TOP = {"format", "format_version", "generation", "key_ids", "mac", "mac_key_id",
       "secrets", "store_id", "outbox"}
SECRET = {"access", "kind", "name", "protection", "versions", "stages",
          "grace_seconds", "expires_at", "operations"}
STAGES = {"current", "previous", "pending", "changed_at", "changed_by", "previous_until"}
VERSION = {"version", "encoding", "created_at", "created_by", "sealed", "hash", "id"}
SEALED = {"ciphertext", "key_id", "nonce", "salt"}
HASH = {"algorithm", "n", "r", "p", "salt"}
OUTBOX = {"name", "generation", "queued_at"}


# ---------------------------------------------------------------- the MAC

class MacInput:
    """docs/file-format.md, "The MAC": u32be(len(name)) || name || u32be(len(value)) || value."""

    def __init__(self):
        self.parts = []

    def add(self, name, value):
        if isinstance(value, bool):
            raise Failure(f"field {name} is a boolean")
        if isinstance(value, int):
            value = str(value)            # a number is its decimal text
        if isinstance(value, str):
            value = value.encode("utf-8")  # text as UTF-8, escapes undone
        n = name.encode("ascii")
        self.parts += [struct.pack(">I", len(n)), n, struct.pack(">I", len(value)), value]

    def bytes(self):
        return b"".join(self.parts)


def joined(items, where):
    # A list is its elements joined with ",", no spaces; empty list -> "".
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise Failure(f"{where} is not a list of strings")
    return ",".join(items)


def opt_num(obj, key, where):
    # "" when the member is absent (docs/file-format.md, "The MAC", rows 13-14, 30-33).
    return "" if key not in obj else need(obj, key, int, where)


def mac_input(store):
    m = MacInput()
    # rows 1-6
    m.add("format", store["format"])
    m.add("format_version", store["format_version"])
    m.add("store_id", store["store_id"])
    m.add("generation", store["generation"])
    m.add("key_ids", joined(store.get("key_ids", []), "key_ids"))
    m.add("mac_key_id", store["mac_key_id"])
    for s in store["secrets"]:
        w = f"secret {s['name']!r}"
        m.add("name", s["name"])                       # 7
        m.add("kind", s["kind"])                       # 8
        m.add("protection", s["protection"])           # 9
        access = s.get("access", {})
        m.add("principals", joined(access.get("principals", []), w + ".access.principals"))  # 10
        # 11: "all", or access.scope.sockets sorted and comma-joined.
        # docs/policy.md: scope is {"all": true} (default) or {"sockets": [...]}.
        scope = access.get("scope", {"all": True})
        if "sockets" in scope:
            m.add("scope", joined(sorted(scope["sockets"], key=lambda x: x.encode()), w + ".access.scope.sockets"))
        else:
            m.add("scope", "all")
        if "stages" in s:                              # 12-16
            st = s["stages"]
            m.add("stages.current", need(st, "current", int, w + ".stages"))
            m.add("stages.previous", opt_num(st, "previous", w + ".stages"))
            m.add("stages.pending", opt_num(st, "pending", w + ".stages"))
            m.add("stages.changed_at", need(st, "changed_at", int, w + ".stages"))
            m.add("stages.changed_by", need(st, "changed_by", str, w + ".stages"))
            if "previous_until" in st:                 # 17
                m.add("stages.previous_until", need(st, "previous_until", int, w + ".stages"))
        for key in ("grace_seconds", "expires_at"):    # 18-19
            if key in s:
                m.add(key, need(s, key, int, w))
        if "operations" in s:                          # 20
            m.add("operations", joined(s["operations"], w + ".operations"))
        for v in s["versions"]:
            vw = f"{w} version {v.get('version')}"
            sealed = need(v, "sealed", dict, vw)
            m.add("version", need(v, "version", int, vw))        # 21
            m.add("encoding", need(v, "encoding", str, vw))      # 22
            m.add("created_at", need(v, "created_at", int, vw))  # 23
            m.add("created_by", need(v, "created_by", str, vw))  # 24
            m.add("key_id", need(sealed, "key_id", str, vw + ".sealed"))   # 25
            # 26-28: the raw bytes, base64-decoded
            for key in ("salt", "nonce", "ciphertext"):
                m.add(key, b64(need(sealed, key, str, vw + ".sealed"), f"{vw}.sealed.{key}"))
            if "hash" in v:                                      # 29-33
                h = v["hash"]
                m.add("hash.algorithm", need(h, "algorithm", str, vw + ".hash"))
                for key in ("n", "r", "p"):
                    m.add("hash." + key, opt_num(h, key, vw + ".hash"))
                # the base64 *text* as in the file, not decoded
                m.add("hash.salt", h.get("salt", ""))
            if "id" in v:                                        # 34
                m.add("version.id", need(v, "id", str, vw))
    for o in store.get("outbox", []):                            # 35-37
        m.add("outbox.name", need(o, "name", str, "outbox entry"))
        m.add("outbox.generation", need(o, "generation", int, "outbox entry"))
        m.add("outbox.queued_at", need(o, "queued_at", int, "outbox entry"))
    return m.bytes()


# ---------------------------------------------------------------- structure

def check_structure(store):
    only_members(store, TOP, "the store")
    # docs/file-format.md, field table: format/format_version are always
    # "coffer-store" and 2; other values are refused.
    if store.get("format") != "coffer-store":
        raise Failure("unknown format (not coffer-store)")
    fv = store.get("format_version")
    if fv != 2 or isinstance(fv, bool):
        raise Failure(f"unknown format_version {fv!r} (this reader knows 2)")
    for key, typ in (("store_id", str), ("generation", int), ("mac", str),
                     ("mac_key_id", str), ("secrets", list)):
        need(store, key, typ, "the store")
    if "key_ids" in store:
        need(store, "key_ids", list, "the store")
    for o in store.get("outbox", []):
        only_members(o, OUTBOX, "an outbox entry")
    prev_name = None
    for s in store["secrets"]:
        only_members(s, SECRET, "a secret")
        name = need(s, "name", str, "a secret")
        w = f"secret {name!r}"
        need(s, "kind", str, w)
        # secrets[] sorted by name, strictly (docs/file-format.md, field table)
        if prev_name is not None and name.encode() <= prev_name.encode():
            raise Failure(f"{w} is duplicated or out of order")
        prev_name = name
        if need(s, "protection", str, w) not in ("sealed", "hashed"):
            raise Failure(f"{w} has unknown protection")
        if "access" in s:
            only_members(s["access"], {"principals", "scope"}, w + ".access")
            if "scope" in s["access"]:
                only_members(s["access"]["scope"], {"all", "sockets"}, w + ".access.scope")
        if "stages" in s:
            only_members(s["stages"], STAGES, w + ".stages")
        prev_v = 0
        numbers = set()
        for v in need(s, "versions", list, w):
            only_members(v, VERSION, w + " version")
            n = need(v, "version", int, w + " version")
            vw = f"{w} version {n}"
            if n <= prev_v:   # oldest first, strictly increasing
                raise Failure(f"{vw} is duplicated or out of order")
            prev_v = n
            numbers.add(n)
            if need(v, "encoding", str, vw) not in ("text", "binary"):
                raise Failure(f"{vw} has unknown encoding")
            only_members(need(v, "sealed", dict, vw), SEALED, vw + ".sealed")
            # hash: for (and only for) the versions of a hashed secret
            if ("hash" in v) != (s["protection"] == "hashed"):
                raise Failure(f"{vw}: hash member does not match protection")
            if "hash" in v:
                only_members(v["hash"], HASH, vw + ".hash")
                if v["hash"].get("algorithm") not in ("hmac-sha256", "scrypt"):
                    raise Failure(f"{vw} has unknown hash algorithm")
        if "stages" in s:   # version numbers that must exist
            for key in ("current", "previous", "pending"):
                if key in s["stages"] and s["stages"][key] not in numbers:
                    raise Failure(f"{w}: stages.{key} names a missing version")


def current_version(s):
    # docs/file-format.md, `stages`: current; absent stages -> the newest version.
    if "stages" in s:
        return s["stages"]["current"]
    return s["versions"][-1]["version"] if s["versions"] else None


# ---------------------------------------------------------------- records

def field16(s):
    # docs/crypto.md, "Sealing a value": field(s) = u16be(len(utf8(s))) || utf8(s)
    b = s.encode("utf-8")
    return struct.pack(">H", len(b)) + b


def open_record(keys, store_id, name, protection, v):
    sealed = v["sealed"]
    kid = sealed["key_id"]
    where = f"secret {name!r} version {v['version']}"
    if kid not in keys:
        raise Failure(f"{where} is sealed under key {kid}, which was not loaded")
    salt = b64(sealed["salt"], where + " salt")
    nonce = b64(sealed["nonce"], where + " nonce")
    ct = b64(sealed["ciphertext"], where + " ciphertext")
    if len(salt) != 32 or len(nonce) != 12 or len(ct) < 16:
        raise Failure(f"{where}: salt, nonce or ciphertext has the wrong length")
    # docs/crypto.md, "Sealing a value"
    record_key = hkdf_sha256(keys[kid], salt, b"coffer record key v1")
    aad = (field16("coffer.record.v1") + field16(store_id) + field16(name)
           + struct.pack(">Q", v["version"]) + field16(kid) + field16(protection))
    try:
        return AESGCM(record_key).decrypt(nonce, ct, aad)
    except InvalidTag:
        raise Failure(f"{where}: record failed authentication")


def verify(plaintext, hash_member, candidate, where):
    # docs/crypto.md, "Verify-only values"
    alg = hash_member["algorithm"]
    if alg == "hmac-sha256":
        # 32 bytes of HMAC key followed by HMAC-SHA256(key, value)
        if len(plaintext) != 64:
            raise Failure(f"{where}: hmac-sha256 record is not 64 bytes")
        got = hmac.new(plaintext[:32], candidate, hashlib.sha256).digest()
        return hmac.compare_digest(got, plaintext[32:])
    # scrypt(value, salt, N, r, p), 32 bytes of output; salt stored as base64.
    n, r, p = (hash_member.get(k) for k in ("n", "r", "p"))
    if not all(isinstance(x, int) and x > 0 for x in (n, r, p)):
        raise Failure(f"{where}: scrypt parameters missing")
    if 128 * n * r > 128 * 1024 * 1024:   # "cost beyond 128 MiB of memory is refused"
        raise Failure(f"{where}: scrypt cost beyond 128 MiB")
    salt = b64(hash_member.get("salt", ""), where + " hash.salt")
    got = Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(candidate)
    return hmac.compare_digest(got, plaintext)


# ---------------------------------------------------------------- the log

LOG_HEADER = {"format", "format_version", "store_id", "base_generation", "base_mac", "mac_key_id"}
LOG_ENTRY = {"generation", "secrets", "removed", "outbox", "outbox_removed"}
LOG_ENTRY_V2 = LOG_ENTRY | {"patched"}


def log_frames(raw):
    # docs/file-format.md, "The log": u32be(len(payload)) || payload || mac(32).
    # A frame the file ends inside of is a write a crash cut short.
    at, frames = 0, []
    while len(raw) - at >= 4:
        (n,) = struct.unpack(">I", raw[at:at + 4])
        if len(raw) - at - 4 < n + 32:
            break
        frames.append((raw[at + 4:at + 4 + n], raw[at + 4 + n:at + 4 + n + 32]))
        at += 4 + n + 32
    return frames


def apply_log(state_dir, store, keys):
    """The store's secrets with the log's entries applied, and the generation reached."""
    secrets = {s["name"]: s for s in store["secrets"]}
    path = os.path.join(state_dir, "store.log")
    if not os.path.exists(path):
        return secrets, store["generation"]
    with open(path, "rb") as f:
        frames = log_frames(f.read())
    if not frames:
        raise Failure("store.log has no header")
    header_payload, header_mac = frames[0]
    header = json.loads(header_payload.decode("utf-8"), object_pairs_hook=no_duplicates)
    only_members(header, LOG_HEADER, "the log's header")
    version = header.get("format_version")
    if header.get("format") != "coffer-store-log" or version not in (1, 2):
        raise Failure("store.log is not a coffer-store-log of format version 1 or 2")
    kid = need(header, "mac_key_id", str, "the log's header")
    if kid not in keys:
        raise Failure(f"no loaded key has id {kid} (the log's mac_key_id)")
    log_key = hkdf_sha256(keys[kid], b"", b"coffer store log v1")
    chain = hmac.new(log_key, b"H" + header_payload, hashlib.sha256).digest()
    if not hmac.compare_digest(chain, header_mac):
        raise Failure("the log's header does not match its MAC")
    base = need(header, "base_generation", int, "the log's header")
    if (header.get("store_id") != store["store_id"] or base != store["generation"]
            or header.get("base_mac") != store["mac"]):
        if header.get("store_id") == store["store_id"] and base > store["generation"]:
            raise Failure("store.log continues a newer store.json than this one (rollback)")
        return secrets, store["generation"]   # a log of an older snapshot: set aside
    generation = base
    for payload, mac in frames[1:]:
        chain_next = hmac.new(log_key, b"E" + chain + payload, hashlib.sha256).digest()
        if not hmac.compare_digest(chain_next, mac):
            break   # replay stops at the first frame that does not check
        entry = json.loads(payload.decode("utf-8"), object_pairs_hook=no_duplicates)
        only_members(entry, LOG_ENTRY_V2 if version == 2 else LOG_ENTRY, "a log entry")
        if need(entry, "generation", int, "a log entry") != generation + 1:
            raise Failure("a log entry is out of sequence")
        for s in entry.get("secrets", []):
            check_structure({"format": "coffer-store", "format_version": 2, "store_id": "", "generation": 0,
                             "mac": "", "mac_key_id": "", "secrets": [s]})
            secrets[s["name"]] = s
        for patch in entry.get("patched", []):
            # docs/file-format.md, "The log": the secret as the commit left
            # it, without the versions it kept; those come, by number, from
            # the secret as it stood.
            prior = secrets.get(patch.get("name"))
            if prior is None:
                raise Failure("a log entry patches a secret that does not exist")
            kept = patch.get("kept")
            if not isinstance(kept, list):
                raise Failure("a log entry's patch has no kept list")
            old_versions = {v["version"]: v for v in prior["versions"]}
            if any(k not in old_versions for k in kept):
                raise Failure("a log entry keeps a version the secret does not have")
            given = need(patch, "versions", list, "a log entry's patch")
            if set(kept) & {v.get("version") for v in given}:
                raise Failure("a log entry both keeps and sets a version")
            whole = {k: v for k, v in patch.items() if k != "kept"}
            whole["versions"] = sorted([old_versions[k] for k in kept] + given, key=lambda v: v["version"])
            check_structure({"format": "coffer-store", "format_version": 2, "store_id": "", "generation": 0,
                             "mac": "", "mac_key_id": "", "secrets": [whole]})
            secrets[whole["name"]] = whole
        for name in entry.get("removed", []):
            secrets.pop(name, None)
        chain, generation = chain_next, generation + 1
    return secrets, generation


# ---------------------------------------------------------------- main

def read_store(state_dir, key_files, verifies):
    keys = load_keyring(state_dir, key_files)
    path = os.path.join(state_dir, "store.json")
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise Failure(f"cannot read {path}: {e.strerror}")
    try:
        store = json.loads(raw.decode("utf-8"), object_pairs_hook=no_duplicates)
    except (UnicodeDecodeError, ValueError) as e:
        raise Failure(f"store.json is not valid JSON: {e}")
    if not isinstance(store, dict):
        raise Failure("store.json is not a JSON object")

    # docs/file-format.md, "The MAC", last paragraph: the order of checks is
    # format/format_version, the mac key, the MAC, then each record.
    check_structure(store)
    mac_kid = store["mac_key_id"]
    if mac_kid not in keys:
        raise Failure(f"no loaded key has id {mac_kid} (mac_key_id)")
    mac_key = hkdf_sha256(keys[mac_kid], b"", b"coffer store mac v1")
    want = hmac.new(mac_key, mac_input(store), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(want.encode(), store["mac"].encode()):
        raise Failure("MAC mismatch: store.json was changed outside cofferd or the key is wrong")

    secrets, generation = apply_log(state_dir, store, keys)
    out = {"store_id": store["store_id"], "generation": generation,
           "mac_key_id": mac_kid, "secrets": {}, "verified": {}}
    opened = {}
    for s in (secrets[name] for name in sorted(secrets, key=lambda n: n.encode())):
        name = s["name"]
        versions = {}
        for v in s["versions"]:
            pt = open_record(keys, store["store_id"], name, s["protection"], v)
            opened[(name, v["version"])] = pt
            entry = {"encoding": v["encoding"]}
            if s["protection"] == "sealed":
                entry["value_b64"] = base64.b64encode(pt).decode("ascii")
            else:
                entry["algorithm"] = v["hash"]["algorithm"]
            versions[str(v["version"])] = entry
        out["secrets"][name] = {"protection": s["protection"], "kind": s["kind"],
                                "current": current_version(s), "versions": versions}

    by_name = secrets
    for item in verifies:
        name, sep, candidate = item.partition("=")
        if not sep:
            raise Failure(f"--verify {name!r}: expected NAME=CANDIDATE")
        s = by_name.get(name)
        if s is None or s["protection"] != "hashed":
            raise Failure(f"--verify: {name!r} is not a hashed secret in the store")
        cur = current_version(s)
        if cur is None:
            raise Failure(f"--verify: {name!r} has no versions")
        v = next(v for v in s["versions"] if v["version"] == cur)
        out["verified"][name] = verify(opened[(name, cur)], v["hash"],
                                       candidate.encode("utf-8"), f"secret {name!r} version {cur}")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("state_dir")
    ap.add_argument("--key-file", action="append", required=True)
    ap.add_argument("--verify", action="append", default=[])
    args = ap.parse_args()
    try:
        out = read_store(args.state_dir, args.key_file, args.verify)
    except Failure as e:
        print(f"coffer_store_reader: {e}", file=sys.stderr)
        return 1
    json.dump(out, sys.stdout, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
