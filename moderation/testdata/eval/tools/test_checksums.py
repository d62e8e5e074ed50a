"""Self-test of the check-digit code against published example numbers.

    python3 -m unittest discover -s moderation/testdata/eval/tools
"""

import random
import unittest

import checksums as cs
from detect import has_valid


class PublishedExamples(unittest.TestCase):
    def test_luhn(self):
        self.assertTrue(cs.luhn_ok("4111111111111111"))
        self.assertTrue(cs.luhn_ok("378282246310005"))
        self.assertFalse(cs.luhn_ok("4111111111111112"))

    def test_iban(self):
        for iban in [
            "DE89370400440532013000", "GB82WEST12345698765432", "FR1420041010050500013M02606",
            "ES9121000418450200051332", "PT50000201231234567890154", "BE68539007547034",
            "NL91ABNA0417164300", "AT611904300234573201", "IE29AIBK93115212345678",
        ]:
            self.assertTrue(cs.iban_ok(iban), iban)
        self.assertFalse(cs.iban_ok("DE88370400440532013000"))
        # mod 97 right but Spanish control digits wrong
        self.assertFalse(cs.iban_ok(cs.iban_from_bban("ES", "21000418460200051332")))

    def test_national_ids(self):
        self.assertTrue(cs.dni_ok("12345678Z"))
        self.assertFalse(cs.dni_ok("12345678A"))
        self.assertTrue(cs.nie_ok("X1234567L"))
        self.assertTrue(cs.cpf_ok("529.982.247-25"))
        self.assertFalse(cs.cpf_ok("529.982.247-26"))
        self.assertTrue(cs.nif_pt_ok("123456789"))
        self.assertFalse(cs.nif_pt_ok("123456780"))
        self.assertTrue(cs.ausweis_ok("T220001293"))
        self.assertTrue(cs.nir_ok("255081416802538"))
        self.assertTrue(cs.ssn_ok("078051120"))
        self.assertFalse(cs.ssn_ok("666123456"))
        self.assertFalse(cs.ssn_ok("900123456"))


class Generators(unittest.TestCase):
    def test_generated_values_validate(self):
        rng = random.Random(1)
        for _ in range(200):
            for brand in cs.CARD_PREFIXES:
                self.assertTrue(cs.luhn_ok(cs.gen_card(rng, brand)))
            self.assertFalse(cs.luhn_ok(cs.gen_not_card(rng)))
            for cc in ("GB", "DE", "ES", "PT", "FR", "IE", "NL", "BE", "AT"):
                self.assertTrue(cs.iban_ok(cs.gen_iban(rng, cc)), cc)
                self.assertFalse(cs.iban_ok(cs.gen_not_iban(rng, cc)), cc)
            self.assertTrue(cs.ssn_ok(cs.gen_ssn(rng)))
            self.assertTrue(cs.dni_ok(cs.gen_dni(rng)))
            self.assertTrue(cs.nie_ok(cs.gen_nie(rng)))
            self.assertTrue(cs.nif_pt_ok(cs.gen_nif_pt(rng)))
            self.assertTrue(cs.cpf_ok(cs.gen_cpf(rng)))
            self.assertTrue(cs.ausweis_ok(cs.gen_ausweis(rng)))
            self.assertTrue(cs.nir_ok(cs.gen_nir(rng)))


class Detection(unittest.TestCase):
    def test_formats(self):
        self.assertTrue(has_valid("luhn", "card 4111 1111 1111 1111 exp 01/30 cvv 123", "en"))
        self.assertTrue(has_valid("luhn", "4111-1111-1111-1111", "en"))
        self.assertTrue(has_valid("luhn", "4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1", "en"))
        self.assertTrue(has_valid("luhn", "four one one one one one one one one one one one one one one one", "en"))
        self.assertTrue(has_valid("luhn", "cuatro uno uno uno uno uno uno uno uno uno uno uno uno uno uno uno", "es"))
        self.assertFalse(has_valid("luhn", "order 4111 1111 1111 1112", "en"))
        self.assertTrue(has_valid("iban", "IBAN DE89 3704 0044 0532 0130 00 please", "en"))
        self.assertTrue(has_valid("cpf", "CPF 529.982.247-25", "pt"))
        self.assertTrue(has_valid("nir", "2 55 08 14 168 025 38", "fr"))
        self.assertTrue(has_valid("ssn", "ssn 078-05-1120", "en"))


if __name__ == "__main__":
    unittest.main()
