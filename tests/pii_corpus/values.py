"""Fake but valid values for every entity type of the corpus, drawn from one seeded `random.Random`.

"Valid" means what the real validators check: cards pass Luhn, IBANs mod 97, NHS numbers mod 11,
DEA numbers their check digit, Aadhaar numbers Verhoeff, TFNs their weighted sum, bitcoin addresses
their base58check / bech32 checksum, GitHub tokens their CRC32, phone numbers `phonenumbers`'
validity for their region. Secrets have the shape their issuers give them (prefix, length,
alphabet) with random bodies. Faker supplies names, places, e-mail domains, IBANs and card
numbers; it is seeded per value from the same stream, so the output depends only on the seed.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import random
import string
import unicodedata
import zlib

import phonenumbers
from faker import Faker

# Entity type names. Presidio's where presidio has the entity; the secret names are the ones the
# pii_redaction processor reports (processors/pii_redaction/detect.py).
EMAIL_ADDRESS, PHONE_NUMBER, CREDIT_CARD, IBAN_CODE = "EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE"
US_SSN, US_ITIN, US_PASSPORT, US_DRIVER_LICENSE = "US_SSN", "US_ITIN", "US_PASSPORT", "US_DRIVER_LICENSE"
IP_ADDRESS, URL, CRYPTO, MEDICAL_LICENSE = "IP_ADDRESS", "URL", "CRYPTO", "MEDICAL_LICENSE"
UK_NHS, UK_NINO, IN_AADHAAR, IN_PAN, AU_TFN = "UK_NHS", "UK_NINO", "IN_AADHAAR", "IN_PAN", "AU_TFN"
PERSON, LOCATION = "PERSON", "LOCATION"
OPENAI_API_KEY, ANTHROPIC_API_KEY, GOOGLE_API_KEY = "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GOOGLE_API_KEY"
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY = "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"
GITHUB_TOKEN, SLACK_TOKEN, SLACK_WEBHOOK_URL = "GITHUB_TOKEN", "SLACK_TOKEN", "SLACK_WEBHOOK_URL"
STRIPE_API_KEY, HUGGINGFACE_TOKEN, GROQ_API_KEY = "STRIPE_API_KEY", "HUGGINGFACE_TOKEN", "GROQ_API_KEY"
JWT, PRIVATE_KEY, BEARER_TOKEN, PASSWORD = "JWT", "PRIVATE_KEY", "BEARER_TOKEN", "PASSWORD"

STRUCTURED = (EMAIL_ADDRESS, PHONE_NUMBER, CREDIT_CARD, IBAN_CODE, US_SSN, US_ITIN, US_PASSPORT, US_DRIVER_LICENSE,
              IP_ADDRESS, URL, CRYPTO, MEDICAL_LICENSE, UK_NHS, UK_NINO, IN_AADHAAR, IN_PAN, AU_TFN)
SECRETS = (OPENAI_API_KEY, ANTHROPIC_API_KEY, GOOGLE_API_KEY, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, GITHUB_TOKEN,
           SLACK_TOKEN, SLACK_WEBHOOK_URL, STRIPE_API_KEY, HUGGINGFACE_TOKEN, GROQ_API_KEY, JWT, PRIVATE_KEY,
           BEARER_TOKEN, PASSWORD)
NER = (PERSON, LOCATION)
ALL = STRUCTURED + SECRETS + NER

_ALNUM = string.ascii_letters + string.digits
_B62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
_URLSAFE = _ALNUM + "-_"
_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_NAME_LOCALES = ("en_US", "en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL", "en_IN", "pl_PL")
# it_IT's city() depends on the interpreter's string hash seed (Faker builds it from a set): not used.
_CITY_LOCALES = tuple(loc for loc in _NAME_LOCALES if loc != "it_IT")
_IBAN_LOCALES = ("de_DE", "fr_FR", "en_GB", "nl_NL", "es_ES", "it_IT", "pl_PL")


class Values:
    """One seeded source of entity values; every method draws from `self.rng` only."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self._fakers = {loc: Faker(loc) for loc in set(_NAME_LOCALES + _IBAN_LOCALES + ("en_AU",))}

    def faker(self, locale: str = "en_US") -> Faker:
        f = self._fakers[locale]
        f.seed_instance(self.rng.getrandbits(64))
        return f

    def chars(self, alphabet: str, n: int) -> str:
        return "".join(self.rng.choice(alphabet) for _ in range(n))

    def pick(self, seq):
        return self.rng.choice(seq)

    # --- people and places (NER entities) -------------------------------------------------------------

    def person(self) -> tuple[str, str]:
        """(first name, last name) from one locale."""
        f = self.faker(self.pick(_NAME_LOCALES))
        return f.first_name(), f.last_name()

    def city(self) -> str:
        return self.faker(self.pick(_CITY_LOCALES)).city()

    def country(self) -> str:
        return self.pick(("Germany", "France", "Spain", "Italy", "the Netherlands", "Poland", "Canada", "Brazil",
                          "Japan", "India", "Australia", "Ireland", "Mexico", "Portugal", "Sweden", "Kenya"))

    def place(self) -> str:
        f = self.faker("en_US")
        return self.pick((f.city(), f.state(), self.country(), f"{f.city()}, {f.state_abbr()}", self.city()))

    def street_address(self) -> str:
        loc = self.pick(("en_US", "en_US", "en_GB", "de_DE", "fr_FR", "en_AU"))
        return self.faker(loc).address().replace("\n", ", ")

    # --- contact data ---------------------------------------------------------------------------------

    def email(self, first: str | None = None, last: str | None = None) -> str:
        f = self.faker("en_US")
        if first and last and self.rng.random() < 0.6:
            local = self.pick((f"{first}.{last}", f"{first[0]}{last}", f"{first}{self.rng.randint(1, 99)}",
                               f"{last}.{first[0]}", f"{first}_{last}", f"{first}+billing"))
            local = unicodedata.normalize("NFKD", local.lower()).replace(" ", "")
            local = "".join(c for c in local if c.isascii() and (c.isalnum() or c in "._+"))
            domain = self.pick((f.free_email_domain(), f.domain_name(), f"mail.{f.domain_name()}", f.domain_name(2)))
            return f"{local}@{domain}"
        return self.pick((f.free_email(), f.company_email(), f.email()))

    def phone(self) -> str:
        region = self.pick(("US", "US", "US", "GB", "GB", "DE", "FR", "IN", "CA", "AU", "BR", "ES", "IT", "NL", "JP"))
        kind = self.pick((phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE))
        example = phonenumbers.example_number_for_type(region, kind)
        national = str(example.national_number)
        for _ in range(200):
            tail = "".join(str(self.rng.randrange(10)) for _ in range(4))
            candidate = phonenumbers.parse(f"+{example.country_code}{national[:-4]}{tail}")
            if phonenumbers.is_valid_number(candidate):
                break
        else:
            candidate = example
        if region in ("US", "CA"):
            digits = str(candidate.national_number)
            a, b, c = digits[:3], digits[3:6], digits[6:]
            return self.pick((f"({a}) {b}-{c}", f"{a}-{b}-{c}", f"+1 {a}-{b}-{c}", f"{a}.{b}.{c}",
                              f"+1 ({a}) {b}-{c}", f"+1{digits}"))
        fmt = self.pick((phonenumbers.PhoneNumberFormat.INTERNATIONAL, phonenumbers.PhoneNumberFormat.INTERNATIONAL,
                         phonenumbers.PhoneNumberFormat.E164, phonenumbers.PhoneNumberFormat.NATIONAL))
        return phonenumbers.format_number(candidate, fmt)

    def url(self) -> str:
        f = self.faker("en_US")
        return self.pick((f.url(), f.uri(), f"https://{f.domain_name()}/{f.uri_path()}?id={self.rng.randint(1, 99999)}",
                          f"https://www.{f.domain_name()}/{f.slug()}", f"http://{f.domain_name()}:8080/{f.uri_path()}",
                          f"https://{f.domain_word()}.{f.domain_name()}/api/v2/{f.uri_path(1)}"))

    def ipv4(self) -> str:
        f = self.faker("en_US")
        return f.ipv4_public() if self.rng.random() < 0.6 else f.ipv4_private()

    def ipv6(self) -> str:
        # global unicast in 2001::/16; compressed (what tools print) or exploded
        v6 = ipaddress.IPv6Address(self.rng.getrandbits(112) | (0x2001 << 112))
        return v6.compressed if self.rng.random() < 0.7 else v6.exploded

    def ip(self) -> str:
        return self.ipv4() if self.rng.random() < 0.7 else self.ipv6()

    # --- financial ------------------------------------------------------------------------------------

    def credit_card(self, separator: str | None = None) -> str:
        kind = self.pick(("visa16", "visa16", "mastercard", "mastercard", "amex", "discover", "jcb16", "diners"))
        number = self.faker("en_US").credit_card_number(kind)
        assert luhn_ok(number), number
        sep = self.pick(("", " ", " ", "-")) if separator is None else separator
        if len(number) == 15:   # amex: 4-6-5
            return sep.join((number[:4], number[4:10], number[10:])) if sep else number
        if len(number) == 14:   # diners: 4-6-4
            return sep.join((number[:4], number[4:10], number[10:])) if sep else number
        return sep.join(number[i:i + 4] for i in range(0, len(number), 4))

    def iban(self) -> str:
        value = self.faker(self.pick(_IBAN_LOCALES)).iban()
        assert iban_ok(value), value
        return " ".join(value[i:i + 4] for i in range(0, len(value), 4)) if self.rng.random() < 0.5 else value

    def bitcoin(self) -> str:
        kind = self.rng.random()
        payload = self.rng.randbytes(20)
        if kind < 0.6:   # bech32 segwit v0 (P2WPKH)
            return bech32_segwit("bc", 0, payload)
        version = b"\x00" if kind < 0.85 else b"\x05"   # P2PKH / P2SH
        return base58check(version + payload)

    # --- national ids ---------------------------------------------------------------------------------

    def ssn(self) -> str:
        value = self.faker("en_US").ssn()
        return value if self.rng.random() < 0.8 else value.replace("-", " ")

    def itin(self) -> str:
        middle = self.pick(list(range(70, 89)) + list(range(50, 66)) + [90, 91, 92, 94, 95, 96, 97, 98, 99])
        return f"9{self.rng.randint(0, 99):02d}-{middle}-{self.rng.randint(0, 9999):04d}"

    def us_passport(self) -> str:
        digits = "".join(str(self.rng.randrange(10)) for _ in range(8))
        return self.pick((str(self.rng.randint(1, 9)) + digits, self.pick("ACEFGHJKLMNPRSTUVWXYZ") + digits))

    def driver_license(self) -> str:
        d = lambda n: "".join(str(self.rng.randrange(10)) for _ in range(n))  # noqa: E731
        letter = self.pick(string.ascii_uppercase)
        # CA/AZ (letter + 7/8 digits), IL (letter + 11 digits), NJ (letter + 14 digits), MN (letter + 12 digits)
        return self.pick((letter + d(7), letter + d(7), letter + d(8), letter + d(11), letter + d(12), letter + d(14)))

    def dea(self, last_name: str | None = None) -> str:
        first = self.pick("ABFGMPRX")
        second = (last_name or self.pick(string.ascii_uppercase))[0].upper()
        if not second.isascii() or not second.isalpha():
            second = "K"
        d = [self.rng.randrange(10) for _ in range(6)]
        check = (d[0] + d[2] + d[4] + 2 * (d[1] + d[3] + d[5])) % 10
        return first + second + "".join(map(str, d)) + str(check)

    def nhs(self) -> str:
        while True:
            d = [self.rng.randrange(10) for _ in range(9)]
            check = 11 - sum(x * w for x, w in zip(d, range(10, 1, -1))) % 11
            if check == 11:
                check = 0
            if check != 10:
                break
        s = "".join(map(str, d)) + str(check)
        sep = self.pick((" ", " ", "-", ""))
        return sep.join((s[:3], s[3:6], s[6:])) if sep else s

    def nino(self) -> str:
        first = self.pick("ABCEGHJKLMNOPRSTWXYZ")
        second = self.pick("ABCEGHJKLMNPRSTWXYZ")
        while first + second in ("BG", "GB", "NK", "KN", "NT", "TN", "ZZ"):
            second = self.pick("ABCEGHJKLMNPRSTWXYZ")
        digits = "".join(str(self.rng.randrange(10)) for _ in range(6))
        suffix = self.pick("ABCD")
        if self.rng.random() < 0.5:
            return f"{first}{second} {digits[:2]} {digits[2:4]} {digits[4:]} {suffix}"
        return f"{first}{second}{digits}{suffix}"

    def aadhaar(self) -> str:
        body = [self.rng.randint(2, 9)] + [self.rng.randrange(10) for _ in range(10)]
        digits = "".join(map(str, body)) + str(verhoeff_check_digit(body))
        return f"{digits[:4]} {digits[4:8]} {digits[8:]}" if self.rng.random() < 0.6 else digits

    def pan(self) -> str:
        return (self.chars(string.ascii_uppercase, 3) + self.pick("PCHFAT") + self.pick(string.ascii_uppercase)
                + "".join(str(self.rng.randrange(10)) for _ in range(4)) + self.pick(string.ascii_uppercase))

    def tfn(self) -> str:
        weights = (1, 4, 3, 7, 5, 8, 6, 9, 10)
        while True:
            d = [self.rng.randrange(10) for _ in range(9)]
            if d[0] and sum(x * w for x, w in zip(d, weights)) % 11 == 0:
                s = "".join(map(str, d))
                return f"{s[:3]} {s[3:6]} {s[6:]}" if self.rng.random() < 0.6 else s

    # --- secrets --------------------------------------------------------------------------------------

    def openai_key(self) -> str:
        kind = self.rng.random()
        if kind < 0.55:
            return "sk-proj-" + self.chars(_URLSAFE, 74) + "T3BlbkFJ" + self.chars(_URLSAFE, 74)
        if kind < 0.7:
            return "sk-svcacct-" + self.chars(_URLSAFE, 74) + "T3BlbkFJ" + self.chars(_URLSAFE, 74)
        if kind < 0.8:
            return "sk-admin-" + self.chars(_URLSAFE, 58) + "T3BlbkFJ" + self.chars(_URLSAFE, 58)
        return "sk-" + self.chars(_ALNUM, 20) + "T3BlbkFJ" + self.chars(_ALNUM, 20)   # legacy user key

    def anthropic_key(self) -> str:
        prefix = "sk-ant-api03-" if self.rng.random() < 0.85 else "sk-ant-admin01-"
        return prefix + self.chars(_URLSAFE, 93) + "AA"

    def google_key(self) -> str:
        return "AIza" + self.chars(_URLSAFE, 35)

    def aws_access_key_id(self) -> str:
        return self.pick(("AKIA", "AKIA", "ASIA")) + self.chars(string.ascii_uppercase + "234567", 16)

    def aws_secret(self) -> str:
        return self.chars(_ALNUM + "+/", 40)

    def github_token(self) -> str:
        if self.rng.random() < 0.25:   # fine-grained PAT
            return "github_pat_" + self.chars(_ALNUM, 22) + "_" + self.chars(_ALNUM, 59)
        entropy = self.chars(_ALNUM, 30)
        crc, check = zlib.crc32(entropy.encode()), ""
        for _ in range(6):
            crc, r = divmod(crc, 62)
            check = _B62[r] + check
        return self.pick(("ghp_", "ghp_", "gho_", "ghs_", "ghu_")) + entropy + check

    def slack_token(self) -> str:
        d = lambda n: "".join(str(self.rng.randrange(10)) for _ in range(n))  # noqa: E731
        if self.rng.random() < 0.6:
            return f"xoxb-{d(12)}-{d(13)}-{self.chars(_ALNUM, 24)}"
        return f"xoxp-{d(12)}-{d(12)}-{d(13)}-{self.chars('0123456789abcdef', 32)}"

    def slack_webhook(self) -> str:
        return (f"https://hooks.slack.com/services/T{self.chars(string.ascii_uppercase + string.digits, 8)}"
                f"/B{self.chars(string.ascii_uppercase + string.digits, 10)}/{self.chars(_ALNUM, 24)}")

    def huggingface_token(self) -> str:
        return "hf_" + self.chars(_ALNUM, 34)

    def groq_key(self) -> str:
        return "gsk_" + self.chars(_ALNUM, 52)

    def stripe_key(self) -> str:
        return self.pick(("sk_live_", "sk_live_", "rk_live_", "sk_test_")) + self.chars(_ALNUM, self.pick((24, 99)))

    def jwt(self, subject: str | None = None) -> str:
        b64 = lambda raw: base64.urlsafe_b64encode(raw).rstrip(b"=").decode()  # noqa: E731
        header = {"alg": self.pick(("HS256", "RS256", "ES256")), "typ": "JWT"}
        iat = 1_760_000_000 + self.rng.randrange(20_000_000)
        claims = {"sub": subject or str(self.rng.randrange(10**9)), "iat": iat, "exp": iat + 3600,
                  "iss": self.pick(("https://auth.acme-corp.io/", "accounts.internal", "api"))}
        if self.rng.random() < 0.5:
            claims["scope"] = self.pick(("read:orders write:orders", "admin", "openid profile email"))
        sig = self.rng.randbytes(32 if header["alg"] == "HS256" else 64)
        return ".".join((b64(json.dumps(header, separators=(",", ":")).encode()),
                         b64(json.dumps(claims, separators=(",", ":")).encode()), b64(sig)))

    def private_key(self) -> str:
        label = self.pick(("RSA PRIVATE KEY", "PRIVATE KEY", "OPENSSH PRIVATE KEY", "EC PRIVATE KEY"))
        size = {"RSA PRIVATE KEY": 1190, "PRIVATE KEY": 1216, "OPENSSH PRIVATE KEY": 380, "EC PRIVATE KEY": 121}[label]
        body = base64.b64encode(self.rng.randbytes(size)).decode()
        width = 70 if label == "OPENSSH PRIVATE KEY" else 64
        lines = [body[i:i + width] for i in range(0, len(body), width)]
        return f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----"

    def bearer(self) -> str:
        return self.pick((self.chars(_ALNUM, 40), "ya29." + self.chars(_URLSAFE, 120), self.chars(_URLSAFE, 64),
                          "EAA" + self.chars(_ALNUM, 180)))

    def password(self) -> str:
        f = self.faker("en_US")
        return self.pick((f.password(length=self.rng.randint(10, 20), special_chars=False),
                          f.password(length=16, special_chars=False),
                          f.word().capitalize() + str(self.rng.randint(10, 9999)) + self.pick("!#%*"),
                          self.chars(_ALNUM, 24)))

    # --- unlabeled fillers (look-alikes that are not sensitive) -----------------------------------------

    def uuid(self) -> str:
        h = self.rng.randbytes(16).hex()
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{self.pick('89ab')}{h[17:20]}-{h[20:]}"

    def hexstr(self, n: int) -> str:
        return self.chars("0123456789abcdef", n)


def luhn_ok(number: str) -> bool:
    digits = [int(c) for c in number if c.isdigit()][::-1]
    return sum(d if i % 2 == 0 else (2 * d - 9 if d > 4 else 2 * d) for i, d in enumerate(digits)) % 10 == 0


def iban_ok(value: str) -> bool:
    s = value.replace(" ", "").upper()
    return int("".join(str(int(c, 36)) for c in s[4:] + s[:4])) % 97 == 1


def base58check(payload: bytes) -> str:
    raw = payload + hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4]
    n, out = int.from_bytes(raw, "big"), ""
    while n:
        n, r = divmod(n, 58)
        out = _B58[r] + out
    return "1" * (len(raw) - len(raw.lstrip(b"\x00"))) + out


def _bech32_polymod(values: list[int]) -> int:
    gen = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
    chk = 1
    for v in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i in range(5):
            chk ^= gen[i] if (top >> i) & 1 else 0
    return chk


def bech32_segwit(hrp: str, version: int, program: bytes) -> str:
    acc, bits, data = 0, 0, [version]
    for byte in program:   # 8-bit groups to 5-bit groups
        acc, bits = (acc << 8) | byte, bits + 8
        while bits >= 5:
            bits -= 5
            data.append((acc >> bits) & 31)
    if bits:
        data.append((acc << (5 - bits)) & 31)
    expanded = [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]
    polymod = _bech32_polymod(expanded + data + [0] * 6) ^ 1
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_BECH32[d] for d in data + checksum)


_VD = [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 2, 3, 4, 0, 6, 7, 8, 9, 5], [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
       [3, 4, 0, 1, 2, 8, 9, 5, 6, 7], [4, 0, 1, 2, 3, 9, 5, 6, 7, 8], [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
       [6, 5, 9, 8, 7, 1, 0, 4, 3, 2], [7, 6, 5, 9, 8, 2, 1, 0, 4, 3], [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
       [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]]
_VP = [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 5, 7, 6, 2, 8, 3, 0, 9, 4]]
for _i in range(2, 8):
    _VP.append([_VP[1][_VP[_i - 1][j]] for j in range(10)])
_VINV = [0, 4, 3, 2, 1, 5, 6, 7, 8, 9]


def verhoeff_ok(number: str) -> bool:
    c = 0
    for i, ch in enumerate(reversed(number)):
        c = _VD[c][_VP[i % 8][int(ch)]]
    return c == 0


def verhoeff_check_digit(digits: list[int]) -> int:
    c = 0
    for i, d in enumerate(reversed(digits)):
        c = _VD[c][_VP[(i + 1) % 8][d]]
    return _VINV[c]
