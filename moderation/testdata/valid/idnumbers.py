"""Synthetic identity, card and bank numbers with valid check digits.

Every generator takes a random.Random so that build.py is deterministic.
"""

import random


def luhn_complete(prefix: str, length: int, rnd: random.Random) -> str:
    body = prefix + "".join(str(rnd.randrange(10)) for _ in range(length - len(prefix) - 1))
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return body + str((10 - total % 10) % 10)


def visa(rnd):
    return luhn_complete("4", 16, rnd)


def mastercard(rnd):
    return luhn_complete(rnd.choice(["51", "52", "53", "54", "55", "2221", "2720"]), 16, rnd)


def amex(rnd):
    return luhn_complete(rnd.choice(["34", "37"]), 15, rnd)


def ssn(rnd):
    while True:
        area = rnd.randrange(1, 900)
        if area != 666:
            break
    return f"{area:03d}-{rnd.randrange(1, 100):02d}-{rnd.randrange(1, 10000):04d}"


def _iban_check(country: str, bban: str) -> str:
    s = bban + country + "00"
    n = int("".join(str(int(c, 36)) for c in s))
    return f"{98 - n % 97:02d}"


def _es_dc(digits: str, weights) -> str:
    r = 11 - sum(int(d) * w for d, w in zip(digits, weights)) % 11
    return {10: "1", 11: "0"}.get(r, str(r))


def iban(country: str, rnd) -> str:
    d = lambda n: "".join(str(rnd.randrange(10)) for _ in range(n))
    if country == "GB":
        bban = rnd.choice(["NWBK", "BARC", "LOYD", "MIDL"]) + d(6) + d(8)
    elif country == "DE":
        bban = d(8) + d(10)
    elif country == "ES":
        bank, office, acct = d(4), d(4), d(10)
        dc = _es_dc("00" + bank + office, [1, 2, 4, 8, 5, 10, 9, 7, 3, 6]) + _es_dc(acct, [1, 2, 4, 8, 5, 10, 9, 7, 3, 6])
        bban = bank + office + dc + acct
    elif country == "FR":
        bank, office, acct = d(5), d(5), d(11)
        key = 97 - (89 * int(bank) + 15 * int(office) + 3 * int(acct)) % 97
        bban = bank + office + acct + f"{key:02d}"
    elif country == "PT":
        body = d(19)
        key = 98 - (int(body) * 100) % 97
        bban = body + f"{key:02d}"
    else:
        raise ValueError(country)
    return country + _iban_check(country, bban) + bban


def group4(s: str, sep: str = " ") -> str:
    return sep.join(s[i:i + 4] for i in range(0, len(s), 4))


def dni(rnd):
    n = rnd.randrange(10000000, 99999999)
    return f"{n:08d}" + "TRWAGMYFPDXBNJZSQVHLCKE"[n % 23]


def nie(rnd):
    p = rnd.randrange(3)
    n = rnd.randrange(1000000, 9999999)
    return "XYZ"[p] + f"{n:07d}" + "TRWAGMYFPDXBNJZSQVHLCKE"[int(f"{p}{n:07d}") % 23]


def cpf(rnd, formatted=True):
    digits = [rnd.randrange(10) for _ in range(9)]
    if len(set(digits)) == 1:
        digits[0] = (digits[0] + 1) % 10
    for k in (10, 11):
        s = sum(d * w for d, w in zip(digits, range(k, 1, -1)))
        r = (s * 10) % 11
        digits.append(0 if r == 10 else r)
    s = "".join(map(str, digits))
    return f"{s[0:3]}.{s[3:6]}.{s[6:9]}-{s[9:]}" if formatted else s


def nif_pt(rnd):
    digits = [rnd.choice([1, 2])] + [rnd.randrange(10) for _ in range(7)]
    s = sum(d * w for d, w in zip(digits, range(9, 1, -1)))
    c = 11 - s % 11
    digits.append(0 if c >= 10 else c)
    return "".join(map(str, digits))


def nir(rnd):
    body = f"{rnd.choice([1, 2])}{rnd.randrange(50, 99):02d}{rnd.randrange(1, 13):02d}{rnd.randrange(1, 96):02d}{rnd.randrange(1, 990):03d}{rnd.randrange(1, 999):03d}"
    key = 97 - int(body) % 97
    return f"{body[0]} {body[1:3]} {body[3:5]} {body[5:7]} {body[7:10]} {body[10:13]} {key:02d}"


def ausweis(rnd):
    alphabet = "CFGHJKLMNPRTVWXYZ0123456789"
    body = rnd.choice("LMNPRTVWXY") + "".join(rnd.choice(alphabet) for _ in range(8))
    val = lambda c: int(c) if c.isdigit() else ord(c) - 55
    check = sum(val(c) * w for c, w in zip(body, [7, 3, 1] * 3)) % 10
    return body + str(check)
