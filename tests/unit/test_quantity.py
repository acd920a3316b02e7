"""resource.Quantity: parsing, the form the API server writes back, errors, and arithmetic.

The expected printed forms were checked against kubectl 1.32, which vendors upstream's
apimachinery (`kubectl set resources --local --limits=cpu=<q> -o jsonpath=...`).
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from kubelite.machinery.quantity import (
    FORMAT_WRONG,
    NUMERIC,
    SUFFIX,
    ZERO,
    Format,
    Quantity,
    QuantityError,
    format_quantity,
    is_valid_quantity,
    milli_value,
    parse_quantity,
    quantity_from_json,
)

INT64_MAX = 2**63 - 1


@pytest.mark.parametrize(
    ("text", "printed"),
    [
        ("0", "0"),
        ("1", "1"),
        ("1.5", "1500m"),
        ("0.5", "500m"),
        ("1000", "1k"),
        ("1000m", "1"),
        ("100m", "100m"),
        ("0.1m", "100u"),
        ("1.0", "1"),
        ("-0", "0"),
        ("1024", "1024"),
        ("1.5Gi", "1536Mi"),
        ("2.5Gi", "2560Mi"),
        ("-1.5Gi", "-1536Mi"),
        ("1024Mi", "1Gi"),
        ("-2048Ki", "-2Mi"),
        ("12Mi", "12Mi"),
        ("16Mi", "16Mi"),
        ("500Mi", "500Mi"),
        ("1Ei", "1Ei"),
        ("1.1Ki", "1126400m"),  # not whole: printed as decimal SI
        ("0.5Ki", "512"),  # below 1024: printed as decimal SI
        ("0.0001Ki", "102400u"),
        ("12e6", "12e6"),
        ("1.5e3", "1500"),
        ("1e3", "1e3"),
        ("1e-3", "1e-3"),
        ("4294967296e1", "42949672960"),
        ("1.5e-10", "1e-9"),  # rounded up to a nano
        ("0.1n", "1n"),
        ("1.5n", "2n"),
        ("-1.5n", "-2n"),
        ("123456789012345678901234567890", "123456789012345678901234567890"),
        ("8Ei", "9223372036854775807"),  # binary values are capped at 2^63-1
        ("1024Ei", "9223372036854775807"),
        # text upstream considers canonical is echoed verbatim, quirks included
        ("1E3", "1E3"),
        ("1e+3", "1e+3"),
        ("+1", "+1"),
        ("01", "01"),
        ("1.G", "1.G"),
        ("1e21", "1e21"),
        ("1e4294967296", "1e4294967296"),  # the exponent wraps to 0 in int32
        # lenient scans upstream accepts as zero
        ("Ki", "0"),
        ("m", "0"),
        ("e3", "0"),
        ("-", "0"),
        (".", "0"),
        # decimal SI has no suffix past E: upstream prints the bare mantissa
        ("1000E", "1"),
    ],
)
def test_quantity_prints_as_the_api_server_writes_it(text: str, printed: str) -> None:
    assert format_quantity(text) == printed
    assert str(parse_quantity(text)) == printed


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", FORMAT_WRONG),
        ("1.1.M", FORMAT_WRONG),
        ("1+1.0M", FORMAT_WRONG),
        ("0.1am", FORMAT_WRONG),
        ("aoeu", FORMAT_WRONG),
        ("1x", FORMAT_WRONG),
        (" 1", FORMAT_WRONG),
        ("1 ", FORMAT_WRONG),
        ("0.1mi", SUFFIX),
        (".5i", SUFFIX),
        ("1i", SUFFIX),
        ("-3.01i", SUFFIX),
        ("-3.01e-", SUFFIX),
        ("1e", SUFFIX),
        ("1ki", SUFFIX),
        ("1e99999999999999999999", SUFFIX),  # exponent beyond int64
        (".Ei", NUMERIC),  # no digits where the slow path needs them
    ],
)
def test_invalid_quantity_raises_upstream_message(text: str, message: str) -> None:
    with pytest.raises(QuantityError) as caught:
        parse_quantity(text)
    assert str(caught.value) == message
    assert not is_valid_quantity(text)


def test_quantity_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        parse_quantity("abc")


@pytest.mark.parametrize(
    ("text", "amount", "fmt"),
    [
        ("1Ki", "1024", Format.BINARY_SI),
        ("1.5Gi", "1610612736", Format.BINARY_SI),
        ("250m", "0.25", Format.DECIMAL_SI),
        ("2k", "2000", Format.DECIMAL_SI),
        ("1e3", "1000", Format.DECIMAL_EXPONENT),
        ("0.0001Ki", "0.1024", Format.DECIMAL_SI),  # binary below one becomes decimal SI
        ("1e-999999999", "1e-9", Format.DECIMAL_EXPONENT),
        ("-1e-999999999", "-1e-9", Format.DECIMAL_EXPONENT),
        ("1e999999999", "1e999999999", Format.DECIMAL_EXPONENT),
    ],
)
def test_quantity_amount_is_exact(text: str, amount: str, fmt: Format) -> None:
    quantity = parse_quantity(text)
    assert quantity.amount == Decimal(amount)
    assert quantity.format is fmt


@pytest.mark.parametrize(
    ("text", "value", "milli"),
    [
        ("1", 1, 1000),
        ("100m", 1, 100),
        ("1.1", 2, 1100),
        ("1500m", 2, 1500),
        ("0.0001", 1, 1),
        ("-1.5", -2, -1500),
        ("-100m", -1, -100),
        ("1Ki", 1024, 1024000),
        ("0", 0, 0),
        ("1e30", INT64_MAX, INT64_MAX),  # saturates as upstream's int64 accessors
        ("-1e30", -(2**63), -(2**63)),
    ],
)
def test_value_and_milli_value_round_away_from_zero(text: str, value: int, milli: int) -> None:
    assert parse_quantity(text).value() == value
    assert parse_quantity(text).milli_value() == milli
    assert milli_value(text) == milli


@pytest.mark.parametrize(
    "text",
    ["1", "1.5", "1000", "1.5Gi", "12e6", "1.5e3", "100m", "0.1n", "-2048Ki", "1.1Ki", "8Ei", "123456789012345"],
)
def test_printed_form_parses_back_to_the_same_amount_and_is_stable(text: str) -> None:
    quantity = parse_quantity(text)
    again = parse_quantity(str(quantity))
    assert again == quantity
    assert str(again) == str(quantity)


def test_quantities_compare_by_amount_regardless_of_format() -> None:
    assert parse_quantity("1Gi") == parse_quantity("1073741824") == parse_quantity("1073741824000m")
    assert parse_quantity("1k") == parse_quantity("1e3")
    assert hash(parse_quantity("1Ki")) == hash(parse_quantity("1024"))
    assert parse_quantity("500m") < parse_quantity("1") <= parse_quantity("1000m") < parse_quantity("1Ki")
    assert max(parse_quantity("1Gi"), parse_quantity("1G")) == parse_quantity("1Gi")
    assert parse_quantity("1") != "1"


def test_arithmetic_keeps_the_left_format_unless_it_is_zero() -> None:
    gi, mi = parse_quantity("1Gi"), parse_quantity("512Mi")
    assert str(gi + mi) == "1536Mi"
    assert str(gi - mi) == "512Mi"
    assert str(mi - gi) == "-512Mi"
    assert str(-gi) == "-1Gi"
    assert str(gi * 3) == str(3 * gi) == "3Gi"
    assert str(ZERO + mi) == "512Mi"
    assert str(parse_quantity("100m") + parse_quantity("1Gi")) == "1073741824100m"
    total = sum((parse_quantity(q) for q in ("100m", "250m", "1")), ZERO)
    assert str(total) == "1350m" and total.milli_value() == 1350


def test_arithmetic_drops_verbatim_text() -> None:
    plus_one = parse_quantity("+1")
    assert str(plus_one) == "+1"
    assert str(plus_one + ZERO) == "1"
    negated = -plus_one
    assert str(-negated) == "1"


def test_constructors_mirror_new_quantity_and_new_milli_quantity() -> None:
    assert str(Quantity.from_milli(1500)) == "1500m"
    assert str(Quantity.from_milli(2000)) == "2"
    assert str(Quantity.from_int(1024, Format.BINARY_SI)) == "1Ki"
    assert str(Quantity.from_int(1000, Format.BINARY_SI)) == "1k"
    assert str(Quantity.from_int(5)) == "5"
    assert ZERO.is_zero() and ZERO.sign() == 0 and parse_quantity("-1").sign() == -1


@pytest.mark.parametrize(
    ("value", "printed"),
    [("1Gi", "1Gi"), (" 500m ", "500m"), (2, "2"), (0.5, "500m"), (2.0, "2"), (1e-7, "100e-9"), (None, "0")],
)
def test_json_values_parse_as_upstream_unmarshal(value: object, printed: str) -> None:
    assert str(quantity_from_json(value)) == printed


@pytest.mark.parametrize("value", [True, [1], {"a": 1}, "1 Gi", float("inf")])
def test_json_values_that_are_not_quantities_are_rejected(value: object) -> None:
    with pytest.raises(QuantityError):
        quantity_from_json(value)
