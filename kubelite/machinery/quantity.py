"""resource.Quantity: parsing, canonical form and arithmetic, as upstream does them.

Error tree::

    QuantityError(ValueError)   text that is not a quantity; `str()` is upstream's message

A quantity is an exact decimal (`Decimal`, never a float) plus the suffix family it was written in
(`Format`), because the canonical form depends on both: "1.5Gi" prints as "1536Mi", "1.5" as
"1500m", "1000" as "1k", "12e6" as "12e6".  Parsing rounds up (away from zero) to a multiple of 1n
and caps binary-suffixed values at 2^63-1, as upstream does.  Text upstream considers already
canonical is kept verbatim and printed back unchanged — including quirks such as "+1" or "01" —
because the API server echoes it that way.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from decimal import MAX_EMAX, MIN_EMIN, ROUND_UP, Context, Decimal, InvalidOperation
from enum import StrEnum

FORMAT_WRONG = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
NUMERIC = "unable to parse numeric part of quantity"
SUFFIX = "unable to parse quantity's suffix"


class QuantityError(ValueError):
    """Text upstream's ParseQuantity rejects (one of FORMAT_WRONG, NUMERIC, SUFFIX)."""


class Format(StrEnum):
    DECIMAL_EXPONENT = "DecimalExponent"  # 12e6
    BINARY_SI = "BinarySI"  # 12Mi
    DECIMAL_SI = "DecimalSI"  # 12M


# Wide enough that every realistic quantity (int64 range, nine decimals, binary suffixes) is exact;
# absurd ones (hundreds of digits) round instead of exhausting memory.
_CONTEXT = Context(prec=200, Emax=MAX_EMAX, Emin=MIN_EMIN, traps=[InvalidOperation])
_NANO = Decimal("1e-9")
_INT64_MAX = 2**63 - 1
_INT64_MIN = -(2**63)
_MAX_INT64_DIGITS = 18  # upstream's maxInt64Factors

_DECIMAL_SUFFIXES = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_BINARY_SUFFIXES = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL_BY_EXPONENT = {e: s for s, e in _DECIMAL_SUFFIXES.items()}
_BINARY_BY_POWER = {e // 10: s for s, e in _BINARY_SUFFIXES.items()}
_SUFFIX_LETTERS = frozenset("eEinumkKMGTP")
_DIGITS = frozenset("0123456789")
_EXPONENT_RE = re.compile(r"[+-]?[0-9]+")


@functools.total_ordering
@dataclass(frozen=True, eq=False)
class Quantity:
    """An exact amount and the format it prints in.  Ordering, equality and hashing use the amount
    only (upstream's Cmp), so 1Gi == 1073741824.  `amount` should be a multiple of 1e-9, as every
    parsed quantity is; `text` is the verbatim form kept by parsing (empty: print canonically)."""

    amount: Decimal
    format: Format = Format.DECIMAL_SI
    text: str = field(default="", repr=False)

    @classmethod
    def from_int(cls, value: int, fmt: Format = Format.DECIMAL_SI) -> Quantity:
        """resource.NewQuantity."""
        return cls(Decimal(value), fmt)

    @classmethod
    def from_milli(cls, milli: int, fmt: Format = Format.DECIMAL_SI) -> Quantity:
        """resource.NewMilliQuantity: `from_milli(1500)` is 1.5, printed "1500m"."""
        return cls(Decimal(milli).scaleb(-3, _CONTEXT), fmt)

    def __str__(self) -> str:
        return self.text or _canonical(self.amount, self.format)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Quantity):
            return NotImplemented
        return self.amount == other.amount

    def __lt__(self, other: Quantity) -> bool:
        if not isinstance(other, Quantity):
            return NotImplemented
        return self.amount < other.amount

    def __hash__(self) -> int:
        return hash(self.amount)

    def __add__(self, other: Quantity) -> Quantity:
        """The sum keeps this quantity's format, unless this one is zero (then it takes `other`'s)."""
        fmt = other.format if self.amount == 0 else self.format
        return Quantity(_CONTEXT.add(self.amount, other.amount), fmt)

    def __sub__(self, other: Quantity) -> Quantity:
        fmt = other.format if self.amount == 0 else self.format
        return Quantity(_CONTEXT.subtract(self.amount, other.amount), fmt)

    def __neg__(self) -> Quantity:
        return Quantity(self.amount.copy_negate(), self.format)

    def __mul__(self, factor: int) -> Quantity:
        return Quantity(_CONTEXT.multiply(self.amount, Decimal(factor)), self.format)

    __rmul__ = __mul__

    def is_zero(self) -> bool:
        return self.amount == 0

    def sign(self) -> int:
        return (self.amount > 0) - (self.amount < 0)

    def value(self) -> int:
        """The amount in whole units, rounded away from zero and saturated at the int64 limits
        (upstream's Value(): 1.1 → 2, 100m → 1, -1.5 → -2)."""
        return _int64(self.amount)

    def milli_value(self) -> int:
        """The amount in thousandths, rounded as value() (upstream's MilliValue: CPU accounting)."""
        return _int64(self.amount.scaleb(3, _CONTEXT))


ZERO = Quantity(Decimal(0))


def _int64(amount: Decimal) -> int:
    if amount > _INT64_MAX:
        return _INT64_MAX
    if amount < _INT64_MIN:
        return _INT64_MIN
    return int(amount.to_integral_value(rounding=ROUND_UP, context=_CONTEXT))


def _scan(text: str) -> tuple[bool, str, str, str, str]:
    """Upstream's parseQuantityString: (positive, value, numerator, denominator, suffix).

    Deliberately as lenient as upstream: a lone sign, "." or a bare suffix ("Ki") scan as zero.
    """
    end, pos, positive = len(text), 0, True
    if text[:1] in ("-", "+"):
        positive = text[0] == "+"
        pos = 1
    while pos < end and text[pos] == "0":
        pos += 1
    if pos >= end:
        return positive, "0", "0", "", ""
    start = pos
    while pos < end and text[pos] in _DIGITS:
        pos += 1
    num = text[start:pos] or "0"
    if pos >= end:
        return positive, text, num, "", ""
    denom = ""
    if text[pos] == ".":
        pos += 1
        start = pos
        while pos < end and text[pos] in _DIGITS:
            pos += 1
        denom = text[start:pos]
        if pos >= end:
            return positive, text, num, denom, ""
    value, suffix_start = text[:pos], pos
    while pos < end and text[pos] in _SUFFIX_LETTERS:
        pos += 1
    if pos < end and text[pos] in "-+":
        pos += 1
    while pos < end and text[pos] in _DIGITS:
        pos += 1
    if pos < end:
        raise QuantityError(FORMAT_WRONG)
    return positive, value, num, denom, text[suffix_start:]


def _interpret(suffix: str) -> tuple[int, int, Format]:
    """(base, exponent, format) of a suffix: decimal SI, binary SI, or `e<int>` / `E<int>`."""
    if suffix in _DECIMAL_SUFFIXES:
        return 10, _DECIMAL_SUFFIXES[suffix], Format.DECIMAL_SI
    if suffix in _BINARY_SUFFIXES:
        return 2, _BINARY_SUFFIXES[suffix], Format.BINARY_SI
    if suffix[:1] in ("e", "E") and _EXPONENT_RE.fullmatch(suffix, 1):
        exponent = int(suffix[1:])
        if _INT64_MIN <= exponent <= _INT64_MAX:
            return 10, (exponent + 2**31) % 2**32 - 2**31, Format.DECIMAL_EXPONENT  # Go's int32() wraps
    raise QuantityError(SUFFIX)


def parse_quantity(text: str) -> Quantity:
    """Parse a quantity string exactly as upstream's ParseQuantity (no surrounding blanks allowed)."""
    if not text:
        raise QuantityError(FORMAT_WRONG)
    if text == "0":
        return Quantity(Decimal(0), Format.DECIMAL_SI, "0")
    positive, value, num, denom, suffix = _scan(text)
    base, exponent, fmt = _interpret(suffix)
    fast = _parse_int64_fast(text, positive, num, denom, exponent, fmt)
    if fast is not None:
        return fast
    if not any(ch in _DIGITS for ch in value):
        raise QuantityError(NUMERIC)
    try:
        amount = Decimal(value)
        if base == 10:
            amount = amount.scaleb(exponent, _CONTEXT)
        else:
            amount = _CONTEXT.multiply(amount, Decimal(2**exponent))
        negative, amount = amount < 0, amount.copy_abs()
        if amount != 0 and amount.as_tuple().exponent < -9:  # type: ignore[operator]
            amount = amount.quantize(_NANO, rounding=ROUND_UP, context=_CONTEXT)
    except InvalidOperation as exc:
        raise QuantityError(NUMERIC) from exc
    if fmt is Format.BINARY_SI and amount > _INT64_MAX:
        amount = Decimal(_INT64_MAX)
    if fmt is Format.BINARY_SI and 0 < amount < 1:
        fmt = Format.DECIMAL_SI
    return Quantity(amount.copy_negate() if negative else amount, fmt)


def _parse_int64_fast(text: str, positive: bool, num: str, denom: str, exponent: int, fmt: Format) -> Quantity | None:
    """Upstream's int64 fast path, which decides whether the original text is kept verbatim."""
    multiplier, scale, precision = 1, 0, -1
    if fmt is Format.BINARY_SI:
        if exponent >= 0 and not denom:
            multiplier = 1 << exponent
            precision = 15 - len(num) - exponent * 3 // 10 - 1
    else:
        scale, precision = exponent, _MAX_INT64_DIGITS - len(num) - len(denom)
    scale -= len(denom)
    if precision < 0 or scale < -9:
        return None
    shifted = num + denom
    unscaled = int(shifted)
    if unscaled * multiplier > _INT64_MAX:
        return None
    signed = unscaled * multiplier if positive else -unscaled * multiplier
    amount = Decimal(signed).scaleb(scale, _CONTEXT)
    if fmt is Format.BINARY_SI:
        verbatim = exponent % 10 == 0 and unscaled & 7 != 0
    else:
        verbatim = scale % 3 == 0 and not shifted.endswith("000") and shifted[0] != "0"
    return Quantity(amount, fmt, text if verbatim else "")


def quantity_from_json(value: object) -> Quantity:
    """A quantity as it arrives in a JSON object (upstream's UnmarshalJSON): a string, trimmed of
    blanks, or a bare number; null is zero."""
    if value is None:
        return ZERO
    if isinstance(value, str):
        return parse_quantity(value.strip())
    if isinstance(value, int | float) and not isinstance(value, bool):
        return parse_quantity(repr(value))
    raise QuantityError(FORMAT_WRONG)


def is_valid_quantity(text: str) -> bool:
    try:
        parse_quantity(text)
    except QuantityError:
        return False
    return True


def format_quantity(quantity: Quantity | str) -> str:
    """The form the API server writes back: canonical unless the text was kept verbatim."""
    return str(parse_quantity(quantity) if isinstance(quantity, str) else quantity)


def milli_value(quantity: Quantity | str) -> int:
    return (parse_quantity(quantity) if isinstance(quantity, str) else quantity).milli_value()


def _canonical(amount: Decimal, fmt: Format) -> str:
    """Upstream's CanonicalizeBytes: no fractional digits, the largest suffix that loses nothing.

    Binary quantities below 1024 in magnitude, or not whole, print as decimal SI.  Decimal SI past
    10^18 has no suffix and, as upstream, prints the bare mantissa (a known upstream quirk).
    """
    if amount == 0:
        return "0"
    sign = "-" if amount < 0 else ""
    magnitude = amount.copy_abs()
    if fmt is Format.BINARY_SI:
        whole = magnitude.to_integral_value(rounding=ROUND_UP, context=_CONTEXT)
        if magnitude < 1024 or whole != magnitude or magnitude.adjusted() > 100:
            fmt = Format.DECIMAL_SI
        else:
            mantissa, power = int(whole), 0
            while mantissa % 1024 == 0:
                mantissa, power = mantissa // 1024, power + 1
            return f"{sign}{mantissa}{_BINARY_BY_POWER.get(power, '')}"
    _, digits, exponent = magnitude.normalize(_CONTEXT).as_tuple()
    mantissa = int("".join(map(str, digits)))
    shift = int(exponent) % 3  # down to a multiple of three, as upstream
    mantissa, exponent = mantissa * 10**shift, int(exponent) - shift
    if fmt is Format.DECIMAL_EXPONENT:
        suffix = f"e{exponent}" if exponent else ""
    else:
        suffix = _DECIMAL_BY_EXPONENT.get(exponent, "")
    return f"{sign}{mantissa}{suffix}"
