"""Check-digit algorithms for the synthetic personal data in the evaluation set.

Each identifier family has a validator (used by check.py on the finished
lines) and a generator (used by build.py to fill placeholders). Generators
take a random.Random so the build is deterministic.
"""

import random
import string

# ---------------------------------------------------------------- Luhn (cards)


def luhn_ok(digits: str) -> bool:
    if not digits.isdigit() or len(digits) < 2:
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def luhn_digit(body: str) -> str:
    for d in "0123456789":
        if luhn_ok(body + d):
            return d
    raise AssertionError("unreachable")


CARD_PREFIXES = {
    "visa": (["4"], 16),
    "mc": (["51", "52", "53", "54", "55", "2221", "2500", "2720"], 16),
    "amex": (["34", "37"], 15),
    "disc": (["6011", "65"], 16),
}


def gen_card(rng: random.Random, brand: str) -> str:
    prefixes, length = CARD_PREFIXES[brand]
    body = rng.choice(prefixes)
    while len(body) < length - 1:
        body += str(rng.randrange(10))
    return body + luhn_digit(body)


def gen_not_card(rng: random.Random, length: int = 16) -> str:
    """A number of card length that fails the Luhn check (order ids, tickets)."""
    while True:
        n = str(rng.randrange(1, 10)) + "".join(str(rng.randrange(10)) for _ in range(length - 1))
        if not luhn_ok(n):
            return n


# ---------------------------------------------------------------- IBAN (ISO 13616, mod 97)

IBAN_LENGTH = {"GB": 22, "DE": 22, "ES": 24, "PT": 25, "FR": 27, "IE": 22, "NL": 18, "BE": 16, "IT": 27, "AT": 20}


def _iban_numeric(s: str) -> int:
    return int("".join(str(int(c, 36)) for c in s))


def iban_ok(iban: str) -> bool:
    iban = iban.replace(" ", "").upper()
    cc = iban[:2]
    if cc not in IBAN_LENGTH or len(iban) != IBAN_LENGTH[cc]:
        return False
    if not iban[2:4].isdigit() or not iban.isalnum():
        return False
    if _iban_numeric(iban[4:] + iban[:4]) % 97 != 1:
        return False
    bban = iban[4:]
    if cc == "ES":
        return es_ccc_ok(bban)
    if cc == "PT":
        return pt_nib_ok(bban)
    if cc == "FR":
        return fr_rib_ok(bban)
    if cc == "BE":
        return be_ok(bban)
    return True


def iban_from_bban(cc: str, bban: str) -> str:
    check = 98 - _iban_numeric(bban + cc + "00") % 97
    return f"{cc}{check:02d}{bban}"


def _digits(rng, n):
    return "".join(str(rng.randrange(10)) for _ in range(n))


ES_WEIGHTS = [1, 2, 4, 8, 5, 10, 9, 7, 3, 6]


def _es_dc(ten: str) -> str:
    s = sum(int(d) * w for d, w in zip(ten, ES_WEIGHTS))
    r = 11 - s % 11
    return str({10: 1, 11: 0}.get(r, r))


def es_ccc_ok(bban: str) -> bool:
    if len(bban) != 20 or not bban.isdigit():
        return False
    entity, office, dc, account = bban[:4], bban[4:8], bban[8:10], bban[10:]
    return dc == _es_dc("00" + entity + office) + _es_dc(account)


def pt_nib_ok(bban: str) -> bool:
    return len(bban) == 21 and bban.isdigit() and int(bban) % 97 == 1


def _fr_rib_key(bank, branch, account) -> str:
    return f"{97 - (89 * int(bank) + 15 * int(branch) + 3 * int(account)) % 97:02d}"


RIB_LETTERS = {c: str(v) for c, v in zip(string.ascii_uppercase, [1, 2, 3, 4, 5, 6, 7, 8, 9] * 2 + [2, 3, 4, 5, 6, 7, 8, 9])}


def fr_rib_ok(bban: str) -> bool:
    """RIB key over bank, branch and account; account letters count as in the RIB table."""
    digits = "".join(RIB_LETTERS.get(c, c) for c in bban.upper())
    if len(digits) != 23 or not digits.isdigit():
        return False
    return digits[21:] == _fr_rib_key(digits[:5], digits[5:10], digits[10:21])


def be_ok(bban: str) -> bool:
    if len(bban) != 12 or not bban.isdigit():
        return False
    r = int(bban[:10]) % 97
    return int(bban[10:]) == (r if r else 97)


def gen_bban(rng: random.Random, cc: str) -> str:
    if cc == "GB":
        bank = "".join(rng.choice(string.ascii_uppercase) for _ in range(4))
        return bank + _digits(rng, 14)
    if cc in ("DE",):
        return _digits(rng, 18)
    if cc == "IE":
        bank = "".join(rng.choice(string.ascii_uppercase) for _ in range(4))
        return bank + _digits(rng, 14)
    if cc == "AT":
        return _digits(rng, 16)
    if cc == "ES":
        entity, office, account = _digits(rng, 4), _digits(rng, 4), _digits(rng, 10)
        return entity + office + _es_dc("00" + entity + office) + _es_dc(account) + account
    if cc == "PT":
        body = _digits(rng, 19)
        return body + f"{98 - int(body + '00') % 97:02d}"
    if cc == "FR":
        bank, branch, account = _digits(rng, 5), _digits(rng, 5), _digits(rng, 11)
        return bank + branch + account + _fr_rib_key(bank, branch, account)
    if cc == "BE":
        body = _digits(rng, 10)
        r = int(body) % 97
        return body + f"{r if r else 97:02d}"
    if cc == "IT":
        # CIN letter is not verified by check.py; mod 97 is.
        return rng.choice(string.ascii_uppercase) + _digits(rng, 10) + _digits(rng, 12)
    if cc == "NL":
        bank = "".join(rng.choice(string.ascii_uppercase) for _ in range(4))
        return bank + _digits(rng, 10)
    raise ValueError(cc)


def gen_iban(rng: random.Random, cc: str) -> str:
    return iban_from_bban(cc, gen_bban(rng, cc))


def gen_not_iban(rng: random.Random, cc: str) -> str:
    """IBAN-shaped reference whose mod-97 check fails (invoice or contract numbers)."""
    while True:
        good = gen_iban(rng, cc)
        check = int(good[2:4])
        bad = f"{cc}{(check + rng.randrange(1, 90)) % 100:02d}{good[4:]}"
        if not iban_ok(bad):
            return bad


def group4(s: str) -> str:
    return " ".join(s[i : i + 4] for i in range(0, len(s), 4))


# ---------------------------------------------------------------- US SSN


def ssn_ok(digits: str) -> bool:
    if len(digits) != 9 or not digits.isdigit():
        return False
    area, group, serial = int(digits[:3]), int(digits[3:5]), int(digits[5:])
    return area not in (0, 666) and area < 900 and group != 0 and serial != 0


def gen_ssn(rng: random.Random) -> str:
    while True:
        s = f"{rng.randrange(1, 900):03d}{rng.randrange(1, 100):02d}{rng.randrange(1, 10000):04d}"
        if ssn_ok(s):
            return s


# ---------------------------------------------------------------- Spain DNI / NIE

DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"


def dni_ok(s: str) -> bool:
    s = s.replace("-", "").replace(" ", "").upper()
    return len(s) == 9 and s[:8].isdigit() and s[8] == DNI_LETTERS[int(s[:8]) % 23]


def gen_dni(rng: random.Random) -> str:
    n = rng.randrange(10_000_000, 99_999_999)
    return f"{n:08d}{DNI_LETTERS[n % 23]}"


def nie_ok(s: str) -> bool:
    s = s.replace("-", "").replace(" ", "").upper()
    if len(s) != 9 or s[0] not in "XYZ" or not s[1:8].isdigit():
        return False
    n = int(str("XYZ".index(s[0])) + s[1:8])
    return s[8] == DNI_LETTERS[n % 23]


def gen_nie(rng: random.Random) -> str:
    p = rng.choice("XYZ")
    body = f"{rng.randrange(0, 10_000_000):07d}"
    n = int(str("XYZ".index(p)) + body)
    return f"{p}{body}{DNI_LETTERS[n % 23]}"


# ---------------------------------------------------------------- Portugal NIF


def nif_pt_ok(s: str) -> bool:
    s = s.replace(" ", "")
    if len(s) != 9 or not s.isdigit():
        return False
    total = sum(int(d) * (9 - i) for i, d in enumerate(s[:8]))
    check = 11 - total % 11
    return int(s[8]) == (0 if check >= 10 else check)


def gen_nif_pt(rng: random.Random) -> str:
    body = rng.choice("123") + _digits(rng, 7)
    total = sum(int(d) * (9 - i) for i, d in enumerate(body))
    check = 11 - total % 11
    return body + str(0 if check >= 10 else check)


# ---------------------------------------------------------------- Brazil CPF


def _cpf_digit(body: str) -> str:
    w = len(body) + 1
    s = sum(int(d) * (w - i) for i, d in enumerate(body))
    r = (s * 10) % 11
    return str(0 if r == 10 else r)


def cpf_ok(s: str) -> bool:
    s = s.replace(".", "").replace("-", "").replace(" ", "")
    if len(s) != 11 or not s.isdigit() or len(set(s)) == 1:
        return False
    return s[9] == _cpf_digit(s[:9]) and s[10] == _cpf_digit(s[:10])


def gen_cpf(rng: random.Random) -> str:
    while True:
        body = _digits(rng, 9)
        if len(set(body)) > 1:
            break
    body += _cpf_digit(body)
    return body + _cpf_digit(body)


# ---------------------------------------------------------------- German ID card (Personalausweis) number

AUSWEIS_ALPHABET = "CFGHJKLMNPRTVWXYZ0123456789"
AUSWEIS_FIRST = "LMNPRTVWXY"


def _icao_value(c: str) -> int:
    return int(c) if c.isdigit() else ord(c) - ord("A") + 10


def _icao_check(s: str) -> str:
    weights = [7, 3, 1]
    return str(sum(_icao_value(c) * weights[i % 3] for i, c in enumerate(s)) % 10)


def ausweis_ok(s: str) -> bool:
    s = s.replace(" ", "").upper()
    if len(s) != 10 or s[0] not in AUSWEIS_FIRST:
        return False
    if any(c not in AUSWEIS_ALPHABET for c in s[:9]) or not s[9].isdigit():
        return False
    return s[9] == _icao_check(s[:9])


def gen_ausweis(rng: random.Random) -> str:
    body = rng.choice(AUSWEIS_FIRST) + "".join(rng.choice(AUSWEIS_ALPHABET) for _ in range(8))
    return body + _icao_check(body)


# ---------------------------------------------------------------- France NIR (numéro de sécurité sociale)


def nir_ok(s: str) -> bool:
    s = s.replace(" ", "")
    if len(s) != 15 or not s.isdigit() or s[0] not in "12":
        return False
    return int(s[13:]) == 97 - int(s[:13]) % 97


def gen_nir(rng: random.Random) -> str:
    sex = rng.choice("12")
    yy = f"{rng.randrange(40, 100):02d}" if rng.random() < 0.8 else f"{rng.randrange(0, 6):02d}"
    mm = f"{rng.randrange(1, 13):02d}"
    dept = f"{rng.choice([1, 6, 13, 31, 33, 35, 38, 44, 59, 67, 69, 75, 76, 92, 93, 94]):02d}"
    commune = f"{rng.randrange(1, 990):03d}"
    order = f"{rng.randrange(1, 1000):03d}"
    body = sex + yy + mm + dept + commune + order
    return body + f"{97 - int(body) % 97:02d}"


def fmt_nir(s: str) -> str:
    return f"{s[0]} {s[1:3]} {s[3:5]} {s[5:7]} {s[7:10]} {s[10:13]} {s[13:]}"
