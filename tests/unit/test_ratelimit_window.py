"""The limiter's arithmetic and header formatting, without Redis."""
from __future__ import annotations

import dataclasses

import pytest

from api.auth.ratelimit import policy_header, ratelimit_header, seconds_until_slot_frees, tier_for, window_state
from config.settings import RateLimitTier, Settings, parse_tiers

TIER = RateLimitTier("free", requests=3, window_s=60, max_jobs_in_flight=5)


def test_first_request_leaves_limit_minus_one():
    state = window_state(3, 60_000, allowed=True, count=1, now_ms=1_000_000, oldest_ms=1_000_000)
    assert (state.allowed, state.remaining, state.reset_s) == (True, 2, 60)


def test_full_window_resets_when_the_oldest_entry_ages_out():
    state = window_state(3, 60_000, allowed=False, count=3, now_ms=1_045_000, oldest_ms=1_000_000)
    assert (state.allowed, state.remaining, state.reset_s) == (False, 0, 15)


def test_reset_rounds_up_and_is_never_zero():
    assert seconds_until_slot_frees(60_000, now_ms=1_059_001, oldest_ms=1_000_000) == 1
    assert seconds_until_slot_frees(60_000, now_ms=1_059_999, oldest_ms=1_000_000) == 1
    assert seconds_until_slot_frees(60_000, now_ms=1_058_500, oldest_ms=1_000_000) == 2
    assert seconds_until_slot_frees(60_000, now_ms=1_060_000, oldest_ms=1_000_000) == 1


def test_empty_window_reports_a_whole_window():
    assert seconds_until_slot_frees(60_000, now_ms=5, oldest_ms=-1) == 60
    state = window_state(0, 60_000, allowed=False, count=0, now_ms=5, oldest_ms=-1)
    assert (state.remaining, state.reset_s) == (0, 60)


def test_remaining_never_negative():
    assert window_state(3, 60_000, False, 5, 0, 0).remaining == 0


def test_headers_follow_the_ietf_draft_structured_field_form():
    state = window_state(3, 60_000, allowed=True, count=2, now_ms=1_010_000, oldest_ms=1_000_000)
    assert policy_header(TIER) == '"free";q=3;w=60'
    assert ratelimit_header(TIER, state) == '"free";r=1;t=50'


def test_policy_names_are_escaped_as_sf_strings():
    odd = dataclasses.replace(TIER, name='we"ird\\tier')
    assert policy_header(odd) == '"we\\"ird\\\\tier";q=3;w=60'


@pytest.mark.parametrize(("name", "expected"), [("pro", "pro"), ("free", "free"), ("gold", "free"), (None, "free")])
def test_unknown_tiers_fall_back_to_the_default(name, expected):
    config = dataclasses.replace(Settings(), rate_limit_tiers=parse_tiers("free=1/1/1,pro=2/2/2"))
    assert tier_for(config, name).name == expected


def test_misconfigured_default_still_yields_a_tier():
    config = dataclasses.replace(Settings(), rate_limit_tiers=parse_tiers("pro=2/2/2"), default_tier="free")
    assert tier_for(config, "gold").name == "pro"
