"""Times in and out of the API: format_timestamp and parse_timestamp."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from wavespeed_mock.mock_server.core.prediction import (
    TIMESTAMP_DIGITS,
    format_timestamp,
    parse_timestamp,
)

NEW_YEAR_2017 = 1_483_228_800.0  # 2017-01-01T00:00:00Z, just after a leap second


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("2017-01-01T00:00:00Z", NEW_YEAR_2017),
        ("2017-01-01t00:00:00z", NEW_YEAR_2017),
        ("2017-01-01T00:00:00", NEW_YEAR_2017),  # no zone: UTC
        ("2017-01-01T01:00:00+01:00", NEW_YEAR_2017),
        ("2017-01-01T00:00:00.250Z", NEW_YEAR_2017 + 0.25),
        ("2017-01-01T00:00:00.123456789Z", NEW_YEAR_2017 + 0.123456),
        # RFC 3339 allows a leap second; datetime does not.
        ("2016-12-31T23:59:60Z", NEW_YEAR_2017),
        ("2016-12-31T23:59:60.5Z", NEW_YEAR_2017 + 0.5),
    ],
)
def test_parse_timestamp(text: str, seconds: float) -> None:
    assert parse_timestamp(text) == pytest.approx(seconds, abs=1e-6)


@pytest.mark.parametrize("text", ["yesterday", "2017-13-01T00:00:00Z", "", "12:00"])
def test_parse_timestamp_refuses_what_is_no_time(text: str) -> None:
    with pytest.raises(ValueError, match="is not an RFC 3339 time"):
        parse_timestamp(text)


@given(
    st.floats(min_value=0, max_value=32_503_680_000, allow_nan=False),
    st.sampled_from(TIMESTAMP_DIGITS),
)
def test_every_style_the_server_writes_reads_back(seconds: float, digits: int) -> None:
    # What the server writes never names a later moment than it stands for.
    back = parse_timestamp(format_timestamp(seconds, digits))
    assert seconds - 1.0 < back <= seconds + 1e-6
