#!/usr/bin/env python3
"""Build all.jsonl, dev.jsonl and test.jsonl from the hand-written lines in src/.

    python3 moderation/testdata/eval/tools/build.py

Deterministic: the same sources always give byte-identical output.

Ids: ev-<family>-<lang>-NNNN, numbered in source order from 0001 per family and language.
Placeholders in pii and hard_negative lines are filled with synthetic numbers from a
random.Random seeded with the line's id (see src/pii.py for the syntax).

Split rule: lines are grouped into strata by (label, lang, expect). Inside a stratum
they are ordered by the SHA-256 hex digest of their id and dealt alternately to dev and
test, starting with dev when the SHA-256 of "label|lang|expect" is even and with test
when it is odd. Every stratum is therefore halved (the odd line of an odd stratum goes
to one side or the other by that stratum hash, so the totals stay close to 50/50), and
a line keeps its half as long as its id does not change.
"""

import hashlib
import importlib
import json
import random
import re
import sys
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "src"))

import checksums as cs  # noqa: E402
from detect import DIGIT_WORDS, has_valid  # noqa: E402

FAMILIES = [
    "threat", "hate", "sexual_harassment", "insult", "spam", "scam",
    "mild_profanity", "pii", "evasion", "clean", "hard_negative",
]
LANGS = ["en", "es", "pt", "de", "fr"]
DEFAULT_EXPECT = {
    "threat": "block", "hate": "block", "sexual_harassment": "block", "insult": None,
    "spam": "block", "scam": "block", "mild_profanity": "flag", "pii": "redact",
    "evasion": None, "clean": "allow", "hard_negative": "allow",
}

PLACEHOLDER = re.compile(r"\{([a-z_0-9]+(?::[A-Za-z0-9_]*)*)\}")

CHECK_OF = {
    "card": "luhn", "iban": "iban", "ssn": "ssn", "dni": "dni", "nie": "nie", "nif": "nif",
    "cpf": "cpf", "ausweis": "ausweis", "nir": "nir", "card_bad": "not_luhn", "iban_bad": "not_iban",
}


def words(digits: str, lang: str) -> str:
    return " ".join(DIGIT_WORDS[lang][int(d)] for d in digits)


def join_groups(digits: str, sizes, sep: str) -> str:
    out, i = [], 0
    for n in sizes:
        out.append(digits[i : i + n])
        i += n
    return sep.join(out)


def fmt_digits(digits: str, fmt: str, lang: str, sizes) -> str:
    if fmt in ("", "space"):
        return join_groups(digits, sizes, " ")
    if fmt == "plain":
        return digits
    if fmt == "dash":
        return join_groups(digits, sizes, "-")
    if fmt == "dot":
        return join_groups(digits, sizes, ".")
    if fmt == "digits":
        return " ".join(digits)
    if fmt == "words":
        return words(digits, lang)
    raise ValueError(f"unknown format {fmt!r}")


def card_sizes(n: int):
    if n == 15:
        return [4, 6, 5]
    return [4] * (n // 4) + ([n % 4] if n % 4 else [])


def fill(kind: str, args: list, rng: random.Random, lang: str) -> str:
    a0 = args[0] if args else ""
    a1 = args[1] if len(args) > 1 else ""
    if kind == "card":
        n = cs.gen_card(rng, a0)
        return fmt_digits(n, a1, lang, card_sizes(len(n)))
    if kind == "card_bad":
        # Retry until no run of its digit groups passes Luhn either.
        while True:
            n = cs.gen_not_card(rng, int(a0) if a0 else 16)
            s = fmt_digits(n, a1, lang, card_sizes(len(n)) if len(n) != 15 else [5, 5, 5])
            if not has_valid("luhn", s, lang):
                return s
    if kind == "iban":
        iban = cs.gen_iban(rng, a0)
        return iban if a1 == "plain" else cs.group4(iban)
    if kind == "iban_bad":
        # Retry until no run of its digit groups passes Luhn either.
        while True:
            s = cs.group4(cs.gen_not_iban(rng, a0))
            if not has_valid("luhn", s, lang):
                return s
    if kind == "ssn":
        s = cs.gen_ssn(rng)
        fmt = a0 or "dash"
        if fmt == "words":
            return words(s, lang)
        sep = {"dash": "-", "space": " ", "dot": ".", "plain": ""}[fmt]
        return sep.join([s[:3], s[3:5], s[5:]])
    if kind == "dni":
        s = cs.gen_dni(rng)
        return s if a0 != "dash" else f"{s[:8]}-{s[8]}"
    if kind == "nie":
        s = cs.gen_nie(rng)
        return s if a0 != "dash" else f"{s[0]}-{s[1:8]}-{s[8]}"
    if kind == "nif":
        s = cs.gen_nif_pt(rng)
        return s if a0 != "space" else f"{s[:3]} {s[3:6]} {s[6:]}"
    if kind == "cpf":
        s = cs.gen_cpf(rng)
        if a0 == "plain":
            return s
        if a0 == "words":
            return words(s, lang)
        return f"{s[:3]}.{s[3:6]}.{s[6:9]}-{s[9:]}"
    if kind == "ausweis":
        return cs.gen_ausweis(rng)
    if kind == "nir":
        s = cs.gen_nir(rng)
        if a0 == "plain":
            return s
        if a0 == "words":
            return words(s, lang)
        return cs.fmt_nir(s)
    if kind == "exp":
        return f"{rng.randrange(1, 13):02d}/{rng.randrange(26, 32)}"
    if kind == "exp4":
        return f"{rng.randrange(1, 13):02d}/20{rng.randrange(26, 32)}"
    if kind == "cvv":
        return f"{rng.randrange(0, 1000):03d}"
    if kind == "cvv4":
        return f"{rng.randrange(0, 10000):04d}"
    raise ValueError(f"unknown placeholder {kind!r}")


def expand(text: str, line_id: str, lang: str):
    rng = random.Random(line_id)
    checks = []

    def sub(m):
        kind, *args = m.group(1).split(":")
        if kind in CHECK_OF and CHECK_OF[kind] not in checks:
            checks.append(CHECK_OF[kind])
        return fill(kind, args, rng, lang)

    return PLACEHOLDER.sub(sub, text), checks


def normalise_entry(family, entry):
    if isinstance(entry, str):
        return entry, DEFAULT_EXPECT[family], ""
    if len(entry) == 2:
        return entry[0], DEFAULT_EXPECT[family], entry[1]
    if len(entry) == 3:
        return entry
    raise ValueError(f"{family}: bad entry {entry!r}")


def build():
    lines = []
    for family in FAMILIES:
        data = importlib.import_module(family).DATA
        for lang in LANGS:
            for i, entry in enumerate(data.get(lang, []), start=1):
                text, expect, note = normalise_entry(family, entry)
                if expect is None:
                    raise ValueError(f"{family}/{lang}#{i}: this family needs an explicit expect")
                line_id = f"ev-{family}-{lang}-{i:04d}"
                text, checks = expand(text, line_id, lang)
                if checks:
                    note = (note + "; " if note else "") + "checks=" + ",".join(checks)
                line = {"id": line_id, "text": text, "label": family, "lang": lang, "expect": expect}
                if note:
                    line["note"] = note
                lines.append(line)
    return lines


def split(lines):
    strata = defaultdict(list)
    for ln in lines:
        strata[(ln["label"], ln["lang"], ln["expect"])].append(ln["id"])
    dev_ids = set()
    for key, ids in strata.items():
        ranked = sorted(ids, key=lambda i: hashlib.sha256(i.encode()).hexdigest())
        start = int(hashlib.sha256("|".join(key).encode()).hexdigest(), 16) % 2
        dev_ids.update(ranked[start::2])
    dev = [ln for ln in lines if ln["id"] in dev_ids]
    test = [ln for ln in lines if ln["id"] not in dev_ids]
    return dev, test


def write(path: Path, lines):
    with path.open("w", encoding="utf-8", newline="\n") as f:
        for ln in lines:
            f.write(json.dumps(ln, ensure_ascii=False) + "\n")


def main():
    lines = build()
    dev, test = split(lines)
    write(ROOT / "all.jsonl", lines)
    write(ROOT / "dev.jsonl", dev)
    write(ROOT / "test.jsonl", test)
    print(f"all {len(lines)}  dev {len(dev)}  test {len(test)}")


if __name__ == "__main__":
    main()
