"""Finding checksum-valid numbers in a chat line, the way check.py verifies them.

A card, SSN, NIF, CPF or NIR may be written in digit groups separated by one space, dot,
dash or ", ", or as number words of the line's language; every run of whole groups with
the right digit count is a candidate.
"""

import re

import checksums as cs

DIGIT_WORDS = {
    "en": ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"],
    "es": ["cero", "uno", "dos", "tres", "cuatro", "cinco", "seis", "siete", "ocho", "nueve"],
    "pt": ["zero", "um", "dois", "três", "quatro", "cinco", "seis", "sete", "oito", "nove"],
    "de": ["null", "eins", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun"],
    "fr": ["zéro", "un", "deux", "trois", "quatre", "cinq", "six", "sept", "huit", "neuf"],
}


def digit_text(text: str, lang: str) -> str:
    """Text with number words of the line's language turned into digits."""
    table = {w: str(i) for i, w in enumerate(DIGIT_WORDS[lang])}
    if lang == "en":
        table["oh"] = "0"
    return re.sub(r"[^\W\d_]+", lambda m: table.get(m.group(0).lower(), m.group(0)), text)


GROUPS = re.compile(r"\d+(?:(?:[ .\-]|, )\d+)*")


def digit_windows(text: str, lang: str, lengths):
    """Every run of whole digit groups (separated by one space, dot, dash or ', ')
    whose digit count is in lengths."""
    for m in GROUPS.finditer(digit_text(text, lang)):
        groups = re.findall(r"\d+", m.group(0))
        for i in range(len(groups)):
            s = ""
            for j in range(i, len(groups)):
                s += groups[j]
                if len(s) in lengths:
                    yield s
                if len(s) > max(lengths):
                    break


def iban_candidates(text: str):
    for m in re.finditer(r"\b([A-Z]{2}\d{2}(?: ?[A-Z0-9]){8,32})", text):
        raw = m.group(1).replace(" ", "")
        n = cs.IBAN_LENGTH.get(raw[:2])
        if n and len(raw) >= n:
            yield raw[:n]


def has_valid(check: str, text: str, lang: str) -> bool:
    if check == "luhn":
        return any(cs.luhn_ok(s) for s in digit_windows(text, lang, range(13, 20)))
    if check == "iban":
        return any(cs.iban_ok(s) for s in iban_candidates(text))
    if check == "ssn":
        return any(cs.ssn_ok(s) for s in digit_windows(text, lang, [9]))
    if check == "nif":
        return any(cs.nif_pt_ok(s) for s in digit_windows(text, lang, [9]))
    if check == "cpf":
        return any(cs.cpf_ok(s) for s in digit_windows(text, lang, [11]))
    if check == "nir":
        return any(cs.nir_ok(s) for s in digit_windows(text, lang, [15]))
    if check == "dni":
        return any(cs.dni_ok(m.group(0)) for m in re.finditer(r"\b\d{8}-?[A-Z]\b", text))
    if check == "nie":
        return any(cs.nie_ok(m.group(0)) for m in re.finditer(r"\b[XYZ]-?\d{7}-?[A-Z]\b", text))
    if check == "ausweis":
        return any(cs.ausweis_ok(m.group(0)) for m in re.finditer(r"\b[A-Z0-9]{10}\b", text))
    raise ValueError(check)
