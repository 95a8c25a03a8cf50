"""The HMAC and token checks, against the vendors' published test vectors."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from producers.signatures import (
    bearer_token_valid,
    github_signature_valid,
    linear_signature_valid,
    slack_signature_valid,
    within_window,
)

# https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries#testing-the-webhook-payload-validation
GITHUB_SECRET = "It's a Secret to Everybody"
GITHUB_BODY = b"Hello, World!"
GITHUB_HEADER = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

# https://api.slack.com/authentication/verifying-requests-from-slack
SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
SLACK_TIMESTAMP = "1531420618"
SLACK_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
    b"&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
    b"&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
    b"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
SLACK_HEADER = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"

LINEAR_SECRET = "lin_wh_test_secret"
LINEAR_BODY = b'{"action":"create","type":"Issue","webhookTimestamp":1732420800000}'


def linear_hex(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def flip_one_byte(body: bytes) -> bytes:
    return body[:-1] + bytes([body[-1] ^ 0x01])


# --- GitHub ---


def test_github_documented_vector_is_accepted():
    assert github_signature_valid([GITHUB_SECRET], GITHUB_BODY, GITHUB_HEADER)


def test_github_signature_over_a_body_changed_by_one_byte_is_rejected():
    assert not github_signature_valid([GITHUB_SECRET], flip_one_byte(GITHUB_BODY), GITHUB_HEADER)


def test_github_signature_with_the_wrong_secret_is_rejected():
    assert not github_signature_valid(["not the secret"], GITHUB_BODY, GITHUB_HEADER)


def test_github_signature_is_accepted_when_any_secret_of_a_rotation_list_matches():
    assert github_signature_valid(["new-secret", GITHUB_SECRET], GITHUB_BODY, GITHUB_HEADER)
    assert github_signature_valid([GITHUB_SECRET, "new-secret"], GITHUB_BODY, GITHUB_HEADER)


def test_github_signature_in_uppercase_hex_is_accepted():
    scheme, _, digest = GITHUB_HEADER.partition("=")
    assert github_signature_valid([GITHUB_SECRET], GITHUB_BODY, f"{scheme}={digest.upper()}")


@pytest.mark.parametrize(
    "header",
    [
        "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",  # no scheme
        "sha1=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",  # GitHub's legacy header
        "sha256=",
        "",
    ],
)
def test_github_signature_without_the_sha256_scheme_or_digest_is_rejected(header):
    assert not github_signature_valid([GITHUB_SECRET], GITHUB_BODY, header)


def test_github_signature_with_no_secrets_is_rejected():
    assert not github_signature_valid([], GITHUB_BODY, GITHUB_HEADER)


# --- Slack ---


def test_slack_documented_vector_is_accepted():
    assert slack_signature_valid([SLACK_SECRET], SLACK_BODY, SLACK_TIMESTAMP, SLACK_HEADER)


def test_slack_signature_over_a_body_changed_by_one_byte_is_rejected():
    assert not slack_signature_valid([SLACK_SECRET], flip_one_byte(SLACK_BODY), SLACK_TIMESTAMP, SLACK_HEADER)


def test_slack_signature_is_bound_to_its_timestamp():
    assert not slack_signature_valid([SLACK_SECRET], SLACK_BODY, "1531420619", SLACK_HEADER)


def test_slack_signature_is_accepted_when_any_secret_of_a_rotation_list_matches():
    assert slack_signature_valid(["rotated-in", SLACK_SECRET], SLACK_BODY, SLACK_TIMESTAMP, SLACK_HEADER)


@pytest.mark.parametrize(
    "header",
    [
        "v1=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
        "a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
        "v0=",
        "",
    ],
)
def test_slack_signature_without_the_v0_version_or_digest_is_rejected(header):
    assert not slack_signature_valid([SLACK_SECRET], SLACK_BODY, SLACK_TIMESTAMP, header)


# --- Linear (signed here, independently of the product) ---


def test_linear_signature_computed_independently_is_accepted():
    assert linear_signature_valid([LINEAR_SECRET], LINEAR_BODY, linear_hex(LINEAR_SECRET, LINEAR_BODY))


def test_linear_signature_over_a_body_changed_by_one_byte_is_rejected():
    signature = linear_hex(LINEAR_SECRET, LINEAR_BODY)
    assert not linear_signature_valid([LINEAR_SECRET], flip_one_byte(LINEAR_BODY), signature)


def test_linear_signature_is_accepted_when_any_secret_of_a_rotation_list_matches():
    signature = linear_hex("previous-secret", LINEAR_BODY)
    assert linear_signature_valid([LINEAR_SECRET, "previous-secret"], LINEAR_BODY, signature)


def test_linear_signature_made_with_a_secret_not_in_the_list_is_rejected():
    signature = linear_hex("someone-else", LINEAR_BODY)
    assert not linear_signature_valid([LINEAR_SECRET, "previous-secret"], LINEAR_BODY, signature)


def test_linear_signature_in_uppercase_hex_is_accepted():
    signature = linear_hex(LINEAR_SECRET, LINEAR_BODY).upper()
    assert linear_signature_valid([LINEAR_SECRET], LINEAR_BODY, signature)


def test_linear_signature_surrounded_by_whitespace_is_accepted():
    signature = linear_hex(LINEAR_SECRET, LINEAR_BODY)
    assert linear_signature_valid([LINEAR_SECRET], LINEAR_BODY, f" {signature} ")


def test_linear_empty_signature_is_rejected():
    assert not linear_signature_valid([LINEAR_SECRET], LINEAR_BODY, "")


# --- Bearer tokens ---


def test_bearer_token_in_the_list_is_accepted():
    assert bearer_token_valid(["tok-1"], "Bearer tok-1")


def test_bearer_token_is_accepted_when_any_token_of_a_rotation_list_matches():
    assert bearer_token_valid(["tok-new", "tok-old"], "Bearer tok-old")
    assert bearer_token_valid(["tok-new", "tok-old"], "Bearer tok-new")


def test_bearer_token_not_in_the_list_is_rejected():
    assert not bearer_token_valid(["tok-new", "tok-old"], "Bearer tok-older")


def test_bearer_token_that_is_a_prefix_of_a_valid_token_is_rejected():
    assert not bearer_token_valid(["tok-1"], "Bearer tok-")


def test_bearer_scheme_is_case_insensitive():
    assert bearer_token_valid(["tok-1"], "bearer tok-1")
    assert bearer_token_valid(["tok-1"], "BEARER tok-1")


@pytest.mark.parametrize("header", ["Basic tok-1", "Token tok-1", "tok-1", "Bearer:tok-1"])
def test_a_token_under_another_scheme_is_rejected(header):
    assert not bearer_token_valid(["tok-1"], header)


@pytest.mark.parametrize("header", ["Bearer", "Bearer ", "Bearer    ", ""])
def test_an_empty_bearer_token_is_rejected(header):
    assert not bearer_token_valid(["tok-1"], header)


def test_an_empty_bearer_token_is_rejected_even_if_an_empty_token_were_configured():
    assert not bearer_token_valid([""], "Bearer ")


def test_bearer_token_with_no_tokens_configured_is_rejected():
    assert not bearer_token_valid([], "Bearer tok-1")


# --- Timestamp windows ---


def test_a_timestamp_exactly_at_the_window_edge_is_within_it():
    assert within_window(1_000.0, 1_300.0, 300)


def test_a_timestamp_one_second_past_the_window_is_outside_it():
    assert not within_window(1_000.0, 1_301.0, 300)


def test_a_timestamp_in_the_future_exactly_at_the_window_edge_is_within_it():
    assert within_window(1_300.0, 1_000.0, 300)


def test_a_timestamp_in_the_future_beyond_the_window_is_outside_it():
    assert not within_window(1_301.0, 1_000.0, 300)


def test_a_timestamp_equal_to_now_is_within_any_window():
    assert within_window(1_000.0, 1_000.0, 0)
