"""Character-level disguises used by a minority of the evasion lines.

The underlying sentences are written by hand in src/evasion.py; these
helpers only swap characters so that the exact code points (zero-width
characters, Cyrillic/Greek look-alikes, enclosed letters) are unambiguous
in the source instead of invisible.
"""

ZWSP = "\u200b"  # zero width space
ZWNJ = "\u200c"  # zero width non-joiner
ZWJ = "\u200d"  # zero width joiner
WJ = "\u2060"  # word joiner
SHY = "\u00ad"  # soft hyphen

CYRILLIC = {
    "A": "\u0410", "B": "\u0412", "C": "\u0421", "E": "\u0415", "H": "\u041d", "I": "\u0406",
    "J": "\u0408", "K": "\u041a", "M": "\u041c", "O": "\u041e", "P": "\u0420", "S": "\u0405",
    "T": "\u0422", "X": "\u0425", "Y": "\u04ae",
    "a": "\u0430", "c": "\u0441", "e": "\u0435", "i": "\u0456", "j": "\u0458", "o": "\u043e",
    "p": "\u0440", "s": "\u0455", "x": "\u0445", "y": "\u0443",
}

GREEK = {
    "A": "\u0391", "B": "\u0392", "E": "\u0395", "H": "\u0397", "I": "\u0399", "K": "\u039a",
    "M": "\u039c", "N": "\u039d", "O": "\u039f", "P": "\u03a1", "T": "\u03a4", "X": "\u03a7",
    "Y": "\u03a5", "Z": "\u0396",
    "o": "\u03bf", "i": "\u03b9", "v": "\u03bd",
}

SMALL_CAPS = dict(zip(
    "abcdefghijklmnopqrstuvwxyz",
    "\u1d00\u0299\u1d04\u1d05\u1d07\ua730\u0262\u029c\u026a\u1d0a\u1d0b\u029f\u1d0d\u0274\u1d0f\u1d18\u01eb\u0280\ua731\u1d1b\u1d1c\u1d20\u1d21x\u028f\u1d22",
))


def between(word: str, sep: str = ZWSP) -> str:
    """Put sep between every character of word."""
    return sep.join(word)


def cyrillic(text: str) -> str:
    """Replace every Latin letter that has a Cyrillic twin."""
    return "".join(CYRILLIC.get(c, c) for c in text)


def greek(text: str) -> str:
    return "".join(GREEK.get(c, c) for c in text)


def mixed(text: str) -> str:
    """Alternate Cyrillic and Greek twins, leaving every other letter Latin."""
    out, n = [], 0
    for c in text:
        table = CYRILLIC if n % 2 == 0 else GREEK
        if c in table:
            out.append(table[c])
            n += 1
        else:
            out.append(c)
            if c.isalpha():
                n += 1
    return "".join(out)


def _offset(text: str, upper: int, lower: int | None) -> str:
    out = []
    for c in text:
        if "A" <= c <= "Z":
            out.append(chr(upper + ord(c) - 65))
        elif "a" <= c <= "z":
            out.append(chr((lower if lower is not None else upper) + ord(c) - 97))
        else:
            out.append(c)
    return "".join(out)


def circled(text: str) -> str:
    return _offset(text, 0x24B6, 0x24D0)


def squared(text: str) -> str:
    return _offset(text, 0x1F170, None)


def fullwidth(text: str) -> str:
    return _offset(text, 0xFF21, 0xFF41)


def small_caps(text: str) -> str:
    return "".join(SMALL_CAPS.get(c, c) for c in text)


def strike(text: str) -> str:
    """Combining long stroke overlay after every character."""
    return "".join(c + "\u0336" for c in text)
