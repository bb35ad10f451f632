"""GB 11643 citizen ID numbers and GB 32100 unified social credit codes: valid codes pass, every
single mistyped character is caught, and each problem has its exact reason (doctests in
layers/protection/checksums.py show one of each)."""

from __future__ import annotations

import datetime as dt

import pytest

from layers.protection.checksums import (
    credit_code_check_char,
    credit_code_problem,
    id_number_check_char,
    id_number_facts,
    id_number_problem,
)

_CREDIT_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def first17_with_check(check: str) -> str:
    """The first 62010219800101xxx (a 城关区 birth on 1980-01-01) whose check character is ``check``."""
    return next(
        f"62010219800101{serial:03d}"
        for serial in range(1000)
        if id_number_check_char(f"62010219800101{serial:03d}") == check
    )


@pytest.mark.parametrize("check", list("0123456789X"))
def test_an_id_number_with_each_possible_check_character_is_valid(check):
    assert id_number_problem(first17_with_check(check) + check) is None


VALID_IDS = {
    "GB 11643 example": ("11010519491231002X", dt.date(1949, 12, 31), "F"),
    "Lanzhou man, leap day": (
        "62010220000229" + "031" + id_number_check_char("62010220000229031"),
        dt.date(2000, 2, 29),
        "M",
    ),
    "born 1890": ("62010218900101" + "002" + id_number_check_char("62010218900101002"), dt.date(1890, 1, 1), "F"),
}


@pytest.mark.parametrize(("value", "birth", "gender"), VALID_IDS.values(), ids=VALID_IDS.keys())
def test_valid_id_numbers_and_their_facts(value, birth, gender):
    assert id_number_problem(value) is None
    assert id_number_facts(value) == (birth, gender)


INVALID_IDS = {
    "empty": ("", "must be 18 characters, got 0"),
    "15-digit first generation": ("110105491231002", "must be 18 characters, got 15"),
    "19 characters": ("11010519491231002X0", "must be 18 characters, got 19"),
    "lower-case x": ("11010519491231002x", "must be 17 digits and a digit or X"),
    "letter in the body": ("1101051949123100AX", "must be 17 digits and a digit or X"),
    "full-width digit": ("１10105194912310021", "must be 17 digits and a digit or X"),
    "February 30": ("110105194902300026", "birth date 19490230 is not a date"),
    "not a leap year": ("110105190002290026", "birth date 19000229 is not a date"),
    "month 13": ("110105194913010026", "birth date 19491301 is not a date"),
    "before 1890": ("110105188912310026", "birth date 18891231 is out of range"),
    "in the future": ("110105299912310026", "birth date 29991231 is out of range"),
    "wrong check digit": ("110105194912310021", "check digit is 1, expected X"),
    "X where a digit belongs": (
        "62010219800101002X",
        f"check digit is X, expected {id_number_check_char('62010219800101002')}",
    ),
}


@pytest.mark.parametrize(("value", "reason"), INVALID_IDS.values(), ids=INVALID_IDS.keys())
def test_invalid_id_numbers_say_why(value, reason):
    assert id_number_problem(value) == reason


def test_every_single_mistyped_digit_of_an_id_number_is_caught():
    valid = "11010519491231002X"
    for position in range(18):
        for digit in "0123456789X":
            if digit != valid[position]:
                mistyped = valid[:position] + digit + valid[position + 1 :]
                assert id_number_problem(mistyped) is not None, mistyped


@pytest.mark.parametrize(
    "first17",
    ["91350100M000100Y4", "91620102MA7ABCDE0", "12620102438000123", "51620100MJY0000010"[:17], "Y1620102000000000"],
)
def test_credit_codes_built_with_their_check_character_are_valid(first17):
    assert credit_code_problem(first17 + credit_code_check_char(first17)) is None


INVALID_CREDIT_CODES = {
    "empty": ("", "must be 18 characters, got 0"),
    "17 characters": ("91350100M000100Y4", "must be 18 characters, got 17"),
    "old 15-digit registration number": ("350100400001234", "must be 18 characters, got 15"),
    "letter I": (
        "91350100M0001I0Y43",
        "character 'I' is not allowed (GB 32100 uses 0-9 and A-Y without I, O, S, V, Z)",
    ),
    "letter O": (
        "91350100M00010OY43",
        "character 'O' is not allowed (GB 32100 uses 0-9 and A-Y without I, O, S, V, Z)",
    ),
    "letter Z": (
        "Z1350100M000100Y43",
        "character 'Z' is not allowed (GB 32100 uses 0-9 and A-Y without I, O, S, V, Z)",
    ),
    "lower case": (
        "91350100m000100Y43",
        "character 'm' is not allowed (GB 32100 uses 0-9 and A-Y without I, O, S, V, Z)",
    ),
    "wrong check character": ("91350100M000100Y44", "check character is 4, expected 3"),
    "transposed pair": (
        "91351000M000100Y43",
        f"check character is 3, expected {credit_code_check_char('91351000M000100Y4')}",
    ),
}


@pytest.mark.parametrize(("value", "reason"), INVALID_CREDIT_CODES.values(), ids=INVALID_CREDIT_CODES.keys())
def test_invalid_credit_codes_say_why(value, reason):
    assert credit_code_problem(value) == reason


def test_every_single_mistyped_character_of_a_credit_code_is_caught():
    valid = "91350100M000100Y43"
    for position in range(18):
        for char in _CREDIT_ALPHABET:
            if char != valid[position]:
                assert credit_code_problem(valid[:position] + char + valid[position + 1 :]) is not None
