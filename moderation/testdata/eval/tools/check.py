#!/usr/bin/env python3
"""Validate the evaluation set and print its count table.

    python3 moderation/testdata/eval/tools/check.py

Exits non-zero on the first class of problem it finds, after printing every instance.
Checks:
  - every line of all/dev/test is a JSON object with exactly the allowed fields and values,
    and its id is ev-<label>-<lang>-NNNN;
  - ids are unique, texts are unique, no two texts are equal after case-folding and
    dropping punctuation, spaces and invisible characters (near-duplicates), nor after
    undoing look-alikes, leetspeak and repeated letters (disguised duplicates);
  - dev and test partition all, and every (label, lang, expect) stratum is split in halves
    that differ by at most one line;
  - minimum sizes per family and language;
  - pii lines whose note says checks=... contain a number that passes that check
    (Luhn, IBAN mod 97 plus national keys, SSN ranges, DNI/NIE letter, NIF, CPF,
    Personalausweis 7-3-1, NIR key); lines tagged not_luhn / not_iban contain none;
  - no allow line contains a Luhn-valid card-length number or a valid IBAN.
"""

import json
import re
import sys
import unicodedata
from collections import Counter, defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from build import FAMILIES, LANGS  # noqa: E402
from detect import has_valid  # noqa: E402
from transforms import CYRILLIC, GREEK, SMALL_CAPS  # noqa: E402

EXPECTS = ["allow", "flag", "block", "redact"]
FIELDS_REQUIRED = {"id", "text", "label", "lang", "expect"}
FIELDS_ALLOWED = FIELDS_REQUIRED | {"note"}
HARMFUL = [f for f in FAMILIES if f not in ("clean", "hard_negative")]
MINIMUM = {f: {"en": 60, "other": 15} for f in HARMFUL}
MINIMUM["clean"] = {"en": 250, "other": 60}
MINIMUM["hard_negative"] = {"en": 200, "other": 50}
EXPECT_OF = {
    "threat": {"block"}, "hate": {"block"}, "sexual_harassment": {"block"},
    "insult": {"block", "flag"}, "spam": {"block"}, "scam": {"block"},
    "mild_profanity": {"flag"}, "pii": {"redact"}, "evasion": {"block", "flag"},
    "clean": {"allow"}, "hard_negative": {"allow"},
}
ID_RE = re.compile(r"^ev-([a-z_]+)-(en|es|pt|de|fr)-(\d{4})$")

problems = []


def problem(msg):
    problems.append(msg)


def load(name):
    out = []
    for n, raw in enumerate((ROOT / name).read_text(encoding="utf-8").splitlines(), start=1):
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as e:
            problem(f"{name}:{n}: not JSON: {e}")
            continue
        if not isinstance(obj, dict):
            problem(f"{name}:{n}: not an object")
            continue
        out.append(obj)
    return out


# ------------------------------------------------------------------ checks


def near_key(text: str) -> str:
    """Case-folded text without punctuation, spaces, invisible format characters and
    combining marks: two lines with the same key differ only in disguise or spelling."""
    t = unicodedata.normalize("NFKC", text).casefold()
    return "".join(c for c in t if unicodedata.category(c)[0] not in "PZ" and unicodedata.category(c) not in ("Cf", "Mn"))


UNDISGUISE = {v: k for table in (CYRILLIC, GREEK, SMALL_CAPS) for k, v in table.items()}
UNDISGUISE.update({chr(0x24B6 + i): chr(65 + i) for i in range(26)})
UNDISGUISE.update({chr(0x24D0 + i): chr(97 + i) for i in range(26)})
UNDISGUISE.update({chr(0x1F170 + i): chr(65 + i) for i in range(26)})
LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "@": "a", "$": "s", "!": "i", "¥": "y"})


def undisguised_key(text: str) -> str:
    """A crude de-obfuscation (look-alikes, enclosed letters, leetspeak, separators,
    repeated letters, accents): an evasion line must not be a disguised copy of another
    line, or tuning on one half would leak the other."""
    t = "".join(UNDISGUISE.get(c, c) for c in unicodedata.normalize("NFKC", text))
    t = unicodedata.normalize("NFKD", t.casefold())
    t = "".join(c for c in t if unicodedata.category(c)[0] not in "PZMC").translate(LEET)
    return re.sub(r"(.)\1+", r"\1", t)


def validate(lines):
    ids, texts, near, disguised = Counter(), Counter(), defaultdict(list), defaultdict(list)
    for ln in lines:
        where = ln.get("id", "?")
        keys = set(ln)
        if not FIELDS_REQUIRED <= keys or not keys <= FIELDS_ALLOWED:
            problem(f"{where}: fields {sorted(keys)}")
            continue
        if any(not isinstance(ln[k], str) or not ln[k] for k in keys):
            problem(f"{where}: every field must be a non-empty string")
            continue
        if ln["label"] not in FAMILIES:
            problem(f"{where}: label {ln['label']!r}")
        if ln["lang"] not in LANGS:
            problem(f"{where}: lang {ln['lang']!r}")
        if ln["expect"] not in EXPECTS:
            problem(f"{where}: expect {ln['expect']!r}")
        elif ln["label"] in EXPECT_OF and ln["expect"] not in EXPECT_OF[ln["label"]]:
            problem(f"{where}: expect {ln['expect']} is not allowed for {ln['label']}")
        m = ID_RE.match(ln["id"])
        if not m or m.group(1) != ln["label"] or m.group(2) != ln["lang"]:
            problem(f"{where}: id does not match ev-<label>-<lang>-NNNN")
        if re.search(r"\{[a-z_]+(:[^}]*)?\}", ln["text"]):
            problem(f"{where}: unfilled placeholder in text")
        if ln["text"] != ln["text"].strip():
            problem(f"{where}: leading or trailing space")
        if ln["label"] == "evasion" and not re.match(
            r"^(threat|hate|insult|sexual_harassment|scam|spam|mild_profanity); ", ln.get("note", "")
        ):
            problem(f"{where}: evasion note must start with the underlying family")
        if ln["label"] == "insult" and not ln.get("note", "").startswith(ln["expect"] + ":"):
            problem(f"{where}: insult note must start with its expect")
        ids[ln["id"]] += 1
        texts[ln["text"]] += 1
        near[near_key(ln["text"])].append((ln["id"], ln["text"]))
        disguised[undisguised_key(ln["text"])].append((ln["id"], ln["text"]))

        note = ln.get("note", "")
        tags = re.search(r"checks=([a-z_,]+)", note)
        for tag in tags.group(1).split(",") if tags else []:
            if tag.startswith("not_"):
                if has_valid(tag[4:], ln["text"], ln["lang"]):
                    problem(f"{where}: tagged {tag} but contains a valid {tag[4:]} number")
            elif not has_valid(tag, ln["text"], ln["lang"]):
                problem(f"{where}: tagged {tag} but no valid {tag} number found")
        if ln["expect"] == "allow":
            for c in ("luhn", "iban"):
                if has_valid(c, ln["text"], ln["lang"]):
                    problem(f"{where}: allow line contains a valid {c} number")
    for i, n in ids.items():
        if n > 1:
            problem(f"duplicate id {i}")
    for t, n in texts.items():
        if n > 1:
            problem(f"duplicate text {t!r}")
    for k, group in near.items():
        if len({t for _, t in group}) > 1:
            problem(f"near-duplicate texts: {', '.join(i for i, _ in group)}")
    for k, group in disguised.items():
        if len({near_key(t) for _, t in group}) > 1:
            problem(f"disguised duplicates: {', '.join(i for i, _ in group)}")


def check_split(all_lines, dev, test):
    a = {ln["id"] for ln in all_lines}
    d = {ln["id"] for ln in dev}
    t = {ln["id"] for ln in test}
    if d & t:
        problem(f"dev and test share {len(d & t)} ids")
    if d | t != a:
        problem("dev and test together are not all")
    by_id = {ln["id"]: ln for ln in all_lines}
    for name, part in (("dev", dev), ("test", test)):
        for ln in part:
            if by_id.get(ln["id"]) != ln:
                problem(f"{name}: {ln['id']} differs from all.jsonl")
    strata = defaultdict(lambda: [0, 0])
    for ln in all_lines:
        strata[(ln["label"], ln["lang"], ln["expect"])][0 if ln["id"] in d else 1] += 1
    for key, (nd, nt) in strata.items():
        if abs(nd - nt) > 1:
            problem(f"stratum {key} split {nd}/{nt}")


def table(lines):
    count = Counter((ln["label"], ln["lang"], ln["expect"]) for ln in lines)
    rows = []
    head = "| family | expect | " + " | ".join(LANGS) + " | total |"
    rows.append(head)
    rows.append("|" + "---|" * (len(LANGS) + 3))
    grand = Counter()
    for fam in FAMILIES:
        for exp in EXPECTS:
            per = [count[(fam, lang, exp)] for lang in LANGS]
            if sum(per):
                rows.append(f"| {fam} | {exp} | " + " | ".join(map(str, per)) + f" | {sum(per)} |")
                for lang, n in zip(LANGS, per):
                    grand[lang] += n
    rows.append("| **all** | | " + " | ".join(str(grand[l]) for l in LANGS) + f" | {sum(grand.values())} |")
    return "\n".join(rows)


def split_table(dev, test):
    d = Counter((ln["label"], ln["lang"]) for ln in dev)
    t = Counter((ln["label"], ln["lang"]) for ln in test)
    rows = ["| family | " + " | ".join(f"{l} dev/test" for l in LANGS) + " | total dev/test |",
            "|" + "---|" * (len(LANGS) + 2)]
    for fam in FAMILIES:
        cells = [f"{d[(fam, l)]}/{t[(fam, l)]}" for l in LANGS]
        nd = sum(d[(fam, l)] for l in LANGS)
        nt = sum(t[(fam, l)] for l in LANGS)
        rows.append(f"| {fam} | " + " | ".join(cells) + f" | {nd}/{nt} |")
    return "\n".join(rows)


def check_minimum(lines):
    count = Counter((ln["label"], ln["lang"]) for ln in lines)
    for fam in FAMILIES:
        for lang in LANGS:
            need = MINIMUM[fam]["en" if lang == "en" else "other"]
            if count[(fam, lang)] < need:
                problem(f"{fam}/{lang}: {count[(fam, lang)]} lines, need {need}")


def main():
    all_lines, dev, test = load("all.jsonl"), load("dev.jsonl"), load("test.jsonl")
    validate(all_lines)
    check_split(all_lines, dev, test)
    check_minimum(all_lines)
    print(table(all_lines))
    print()
    print(split_table(dev, test))
    expects = Counter(ln["expect"] for ln in all_lines)
    print()
    print(f"lines: all {len(all_lines)}, dev {len(dev)}, test {len(test)}; by expect: "
          + ", ".join(f"{e} {expects[e]}" for e in EXPECTS))
    tagged = Counter(t for ln in all_lines for m in [re.search(r"checks=([a-z_,]+)", ln.get("note", ""))] if m
                     for t in m.group(1).split(","))
    print("checksum-verified lines by check: " + ", ".join(f"{k} {v}" for k, v in sorted(tagged.items())))
    if problems:
        print(f"\n{len(problems)} problem(s):", file=sys.stderr)
        for p in problems:
            print("  " + p, file=sys.stderr)
        sys.exit(1)
    print("OK")


if __name__ == "__main__":
    main()
