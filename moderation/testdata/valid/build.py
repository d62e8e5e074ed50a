"""Builds valid.jsonl (or, given valid2, valid3 or valid4, that set) from its folder's
data_<lang>.py. Deterministic: same sources, same file."""

import json
import random
import sys
from pathlib import Path

import idnumbers as num

HERE = Path(__file__).parent
LANGS = ["en", "es", "pt", "de", "fr"]
HARM = ["threat", "hate", "sexual_harassment", "insult", "spam", "scam", "mild_profanity", "pii", "evasion"]
DEFAULT_EXPECT = {"threat": "block", "hate": "block", "sexual_harassment": "block", "spam": "block",
                  "scam": "block", "mild_profanity": "flag", "pii": "redact", "clean": "allow",
                  "hard_negative": "allow"}


def fill(text: str, rnd: random.Random) -> str:
    subs = {
        "{ssn}": lambda: num.ssn(rnd),
        "{ssn_plain}": lambda: num.ssn(rnd).replace("-", ""),
        "{ssn_spaced}": lambda: num.ssn(rnd).replace("-", " "),
        "{visa}": lambda: num.visa(rnd),
        "{visa_spaced}": lambda: num.group4(num.visa(rnd)),
        "{mc_spaced}": lambda: num.group4(num.mastercard(rnd)),
        "{mc_plain}": lambda: num.mastercard(rnd),
        "{mc_dashed}": lambda: num.group4(num.mastercard(rnd), "-"),
        "{amex}": lambda: num.amex(rnd),
        "{iban_GB}": lambda: num.group4(num.iban("GB", rnd)),
        "{iban_DE}": lambda: num.group4(num.iban("DE", rnd)),
        "{iban_ES}": lambda: num.group4(num.iban("ES", rnd)),
        "{iban_FR}": lambda: num.group4(num.iban("FR", rnd)),
        "{iban_PT}": lambda: num.group4(num.iban("PT", rnd)),
        "{dni}": lambda: num.dni(rnd),
        "{nie}": lambda: num.nie(rnd),
        "{cpf}": lambda: num.cpf(rnd),
        "{cpf_plain}": lambda: num.cpf(rnd, formatted=False),
        "{nif_pt}": lambda: num.nif_pt(rnd),
        "{nir}": lambda: num.nir(rnd),
        "{ausweis}": lambda: num.ausweis(rnd),
    }
    for k, f in subs.items():
        while k in text:
            text = text.replace(k, f(), 1)
    if "{" in text:
        raise ValueError("unfilled placeholder in " + text)
    return text


def build(folder: Path, prefix: str, out_name: str) -> int:
    """Builds folder/out_name from folder's data_<lang>.py, ids prefix-family-lang-n.

    The later validation sets (../valid2, ../valid3, ../valid4) build with this too."""
    sys.path.insert(0, str(folder))  # that folder's data_<lang>.py first
    out = []
    for lang in LANGS:
        sys.modules.pop("data_" + lang, None)
        mod = __import__("data_" + lang)
        for family, lines in mod.LINES.items():
            if family not in DEFAULT_EXPECT and family not in ("insult", "evasion"):
                raise ValueError(f"unknown family {family}")
            for i, raw in enumerate(lines, 1):
                note = None
                if " || " in raw:
                    raw, note = raw.split(" || ", 1)
                expect = DEFAULT_EXPECT.get(family)
                if family in ("insult", "evasion"):
                    expect, raw = raw.split(": ", 1)
                    assert expect in ("block", "flag"), raw
                id_ = f"{prefix}-{family}-{lang}-{i:04d}"
                rnd = random.Random(id_)
                line = {"id": id_, "text": fill(raw, rnd), "label": family, "lang": lang, "expect": expect}
                if note:
                    line["note"] = note
                out.append(line)
    with open(folder / out_name, "w", encoding="utf-8") as f:
        for line in out:
            f.write(json.dumps(line, ensure_ascii=False) + "\n")
    counts = {}
    for l in out:
        counts[(l["label"], l["lang"])] = counts.get((l["label"], l["lang"]), 0) + 1
    fams = HARM + ["clean", "hard_negative"]
    print("| family | " + " | ".join(LANGS) + " | total |")
    print("|---|" + "---|" * (len(LANGS) + 1))
    for fam in fams:
        row = [counts.get((fam, l), 0) for l in LANGS]
        print(f"| {fam} | " + " | ".join(map(str, row)) + f" | {sum(row)} |")
    print(f"lines: {len(out)}")
    return 0


# The sets built by this script: folder, id prefix, output file.
SETS = {"valid": (HERE, "va", "valid.jsonl"),
        "valid2": (HERE.parent / "valid2", "v2", "valid2.jsonl"),
        "valid3": (HERE.parent / "valid3", "v3", "valid3.jsonl"),
        "valid4": (HERE.parent / "valid4", "v4", "valid4.jsonl")}


def main() -> int:
    name = sys.argv[1] if len(sys.argv) > 1 else "valid"
    return build(*SETS[name])


if __name__ == "__main__":
    sys.exit(main())
