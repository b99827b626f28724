"""The message pools of the compression cases (issue #9), written once by harness.py into
bench/build/pools/ and cycled by every client, so that every client sends (and the server
pushes) exactly the same bytes.

- json.pool: 1,000 distinct JSON records (compact JSON, UTF-8, about 0.8-2 KB each): order
  events with ids, names, e-mail addresses, timestamps, UUIDs, nested objects and arrays,
  floats, as an API or a live feed sends them. Generated from a fixed seed.
- random.pool: 64 blobs of 16 KiB of pseudo-random bytes (SHAKE-256 of a fixed string), which
  DEFLATE cannot shrink.

File format (read by wsdom_bench::Pool, benchcommon.load_pool, the C client and the Chromium
client): one header line `wsdom-bench-pool 1 text|binary COUNT\n`, then COUNT records, each a
u32 little-endian length and that many bytes.
"""

import hashlib
import json
import random
import struct
import unicodedata
from pathlib import Path

POOL_SEED = 7692
JSON_COUNT = 1000
RANDOM_COUNT = 64
RANDOM_SIZE = 16384

FIRST = ["Ana", "Björn", "Chen", "Dmitri", "Elif", "Fatima", "Giulia", "Hiroshi", "Ingrid", "José",
         "Kwame", "Léa", "Mateo", "Nadia", "Olumide", "Priya", "Quentin", "Rosa", "Søren", "Tomasz",
         "Uma", "Víctor", "Wei", "Xavier", "Yara", "Zoë", "Aiko", "Bruno", "Chiara", "Diego"]
LAST = ["Silva", "Andersson", "Wang", "Ivanov", "Yılmaz", "Khan", "Rossi", "Tanaka", "Berg",
        "García", "Mensah", "Dubois", "López", "Haddad", "Adeyemi", "Sharma", "Martin", "Costa",
        "Nielsen", "Kowalski", "Patel", "Hernández", "Zhang", "Moreau", "Haddad", "Müller",
        "Sato", "Fischer", "Bianchi", "Ortiz"]
CITIES = [("Berlin", "DE", 52.52, 13.405), ("São Paulo", "BR", -23.55, -46.633),
          ("Tokyo", "JP", 35.676, 139.65), ("Lagos", "NG", 6.524, 3.379),
          ("Toronto", "CA", 43.653, -79.383), ("Mumbai", "IN", 19.076, 72.877),
          ("Paris", "FR", 48.857, 2.352), ("Kraków", "PL", 50.065, 19.945),
          ("Austin", "US", 30.267, -97.743), ("Melbourne", "AU", -37.814, 144.963),
          ("İstanbul", "TR", 41.008, 28.978), ("Madrid", "ES", 40.417, -3.704)]
PRODUCTS = [("Wireless mouse", "electronics"), ("USB-C cable, 2 m", "electronics"),
            ("Espresso beans 1 kg", "grocery"), ("Running shoes", "sports"),
            ("Desk lamp", "home"), ("Noise-cancelling headphones", "electronics"),
            ("Yoga mat", "sports"), ("Cast-iron pan", "kitchen"), ("Notebook A5", "office"),
            ("Mechanical keyboard", "electronics"), ("Green tea, 100 bags", "grocery"),
            ("Water bottle 750 ml", "sports"), ("Throw pillow", "home"),
            ("Chef's knife", "kitchen"), ("Fountain pen", "office"), ("Phone case", "electronics")]
EVENTS = ["order.created", "order.updated", "order.shipped", "order.delivered",
          "payment.captured", "payment.refunded", "cart.updated"]
STATUS = ["pending", "paid", "packed", "shipped", "delivered", "cancelled"]
TAGS = ["vip", "newsletter", "beta", "mobile", "returning", "b2b", "gift", "priority"]
NOTES = [None, None, None, "Leave at the door", "Gift wrap, please", "Call on arrival",
         "Deliver after 18:00", "Fragile: glassware inside"]
CURRENCY = ["EUR", "USD", "GBP", "JPY", "BRL", "INR"]


def ascii_name(name):
    """The name as an e-mail local part: "Søren" -> "soren"."""
    folded = unicodedata.normalize("NFKD", name.lower().replace("ø", "o").replace("ı", "i"))
    return "".join(c for c in folded if c.isascii() and c.isalpha())


def json_record(rng, i):
    def ts():
        return (f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:"
                f"{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}.{rng.randint(0, 999):03d}Z")
    first, last = rng.choice(FIRST), rng.choice(LAST)
    city, country, lat, lon = rng.choice(CITIES)
    items = []
    for _ in range(rng.randint(2, 8)):
        name, cat = rng.choice(PRODUCTS)
        items.append({"sku": f"SKU-{rng.randrange(100000):05d}", "name": name, "category": cat,
                      "qty": rng.randint(1, 5), "unit_price": round(rng.uniform(1.5, 250), 2),
                      "discount": rng.choice([0, 0, 0, 0.05, 0.1, 0.15])})
    subtotal = round(sum(it["qty"] * it["unit_price"] * (1 - it["discount"]) for it in items), 2)
    tax = round(subtotal * rng.choice([0.07, 0.19, 0.2, 0.21]), 2)
    ship = rng.choice([0, 0, 4.99, 9.9])
    uid = "%032x" % rng.getrandbits(128)
    status = rng.choice(STATUS)
    return {
        "id": 4_000_000 + 7 * i + rng.randrange(7),
        "event": rng.choice(EVENTS),
        "ts": ts(),
        "request_id": f"{uid[:8]}-{uid[8:12]}-{uid[12:16]}-{uid[16:20]}-{uid[20:]}",
        "user": {"id": rng.randrange(10**6, 10**7), "name": f"{first} {last}",
                 "email": f"{ascii_name(first)}.{ascii_name(last)}{rng.randrange(100)}@example.com",
                 "locale": rng.choice(["en-US", "de-DE", "pt-BR", "ja-JP", "fr-FR", "pl-PL"]),
                 "verified": rng.random() < 0.8,
                 "tags": rng.sample(TAGS, rng.randint(0, 3))},
        "shipping": {"city": city, "country": country, "postcode": f"{rng.randrange(10000, 99999)}",
                     "geo": {"lat": round(lat + rng.uniform(-0.2, 0.2), 6),
                             "lon": round(lon + rng.uniform(-0.2, 0.2), 6)}},
        "items": items,
        "totals": {"subtotal": subtotal, "tax": tax, "shipping": ship,
                   "total": round(subtotal + tax + ship, 2), "currency": rng.choice(CURRENCY)},
        "status": status,
        "history": [{"at": ts(), "status": s} for s in STATUS[:rng.randint(1, 4)]],
        "metrics": {"latency_ms": round(rng.lognormvariate(3, 0.6), 3),
                    "retries": rng.choice([0, 0, 0, 1, 2]), "score": round(rng.random(), 4)},
        "notes": rng.choice(NOTES),
    }


def json_pool():
    rng = random.Random(POOL_SEED)
    return [json.dumps(json_record(rng, i), ensure_ascii=False, separators=(",", ":")).encode()
            for i in range(JSON_COUNT)]


def random_pool():
    return [hashlib.shake_256(b"wsdom-bench random %d" % i).digest(RANDOM_SIZE)
            for i in range(RANDOM_COUNT)]


def encode(kind, messages):
    head = f"wsdom-bench-pool 1 {kind} {len(messages)}\n".encode()
    return head + b"".join(struct.pack("<I", len(m)) + m for m in messages)


def client_frame_bytes(n):
    """Bytes on the wire of a client frame with an n-byte payload (header + mask key + n)."""
    return n + 6 + (2 if n >= 126 else 0) + (6 if n >= 65536 else 0)


def write_pools(directory):
    """Writes (if changed) json.pool and random.pool into `directory`; returns, per pool name,
    its file and statistics."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, kind, messages in (("json", "text", json_pool()), ("random", "binary", random_pool())):
        data = encode(kind, messages)
        path = directory / f"{name}.pool"
        if not path.exists() or path.read_bytes() != data:
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(data)
            tmp.replace(path)
        sizes = [len(m) for m in messages]
        out[name] = {
            "file": str(path), "kind": kind, "count": len(messages),
            "bytes": sum(sizes), "mean": sum(sizes) / len(sizes), "min": min(sizes),
            "max": max(sizes), "sha256": hashlib.sha256(data).hexdigest()[:16],
            # Bytes per message a client sends without compression (frame header + mask key).
            "plain_wire_mean": sum(client_frame_bytes(s) for s in sizes) / len(sizes),
        }
    return out


def load_pool(path):
    """(text, messages) of a pool file; text messages as str, binary ones as bytes."""
    data = Path(path).read_bytes()
    nl = data.index(b"\n")
    magic, version, kind, count = data[:nl].decode().split(" ")
    if magic != "wsdom-bench-pool" or version != "1" or kind not in ("text", "binary"):
        raise ValueError(f"{path}: not a pool file")
    at, messages = nl + 1, []
    for _ in range(int(count)):
        (n,) = struct.unpack_from("<I", data, at)
        messages.append(data[at + 4:at + 4 + n])
        at += 4 + n
    if at != len(data):
        raise ValueError(f"{path}: trailing bytes")
    text = kind == "text"
    return text, [m.decode() for m in messages] if text else messages
