import uuid
from unittest import mock

import pytest
from django.core import signing
from django.test import override_settings

from subscribers import tokens

UID = uuid.UUID("12345678-1234-5678-1234-567812345678")
DAY = 24 * 60 * 60


def test_unsubscribe_token_round_trips_uid_and_lists():
    assert tokens.read_unsubscribe_token(tokens.unsubscribe_token(UID, [7, 3])) == (UID, [3, 7], None)


def test_unsubscribe_token_for_all_lists_carries_no_list_ids():
    assert tokens.read_unsubscribe_token(tokens.unsubscribe_token(UID)) == (UID, [], None)


def test_unsubscribe_token_with_an_altered_list_is_rejected():
    token = tokens.unsubscribe_token(UID, [3])
    payload, signature = token.rsplit(".", 1)
    with pytest.raises(tokens.BadToken):
        tokens.read_unsubscribe_token(f"{payload}-4.{signature}")


def test_unsubscribe_token_signed_with_another_secret_is_rejected():
    with override_settings(SECRET_KEY="someone-elses-secret-key-0000000000000000"):
        forged = tokens.unsubscribe_token(UID, [3])
    with pytest.raises(tokens.BadToken):
        tokens.read_unsubscribe_token(forged)


@pytest.mark.parametrize("token", ["", "garbage", "abc.def", f"{UID.hex}.AAAA"])
def test_malformed_tokens_are_rejected(token):
    with pytest.raises(tokens.BadToken):
        tokens.read_unsubscribe_token(token)
    with pytest.raises(tokens.BadToken):
        tokens.read_confirm_token(token)


def test_unsubscribe_token_never_expires():
    with mock.patch("django.core.signing.time.time", return_value=0):
        old = tokens.unsubscribe_token(UID, [1])
    assert tokens.read_unsubscribe_token(old) == (UID, [1], None)


def test_confirm_token_is_not_accepted_as_unsubscribe_or_preferences_token():
    token = tokens.confirm_token(UID, [1])
    with pytest.raises(tokens.BadToken):
        tokens.read_unsubscribe_token(token)
    with pytest.raises(tokens.BadToken):
        tokens.read_preferences_token(token)


def test_unsubscribe_and_preferences_tokens_do_not_confirm():
    with pytest.raises(tokens.BadToken):
        tokens.read_confirm_token(tokens.unsubscribe_token(UID, [1]))
    with pytest.raises(tokens.BadToken):
        tokens.read_confirm_token(tokens.preferences_token(UID))


def test_preferences_token_round_trips_and_is_not_an_unsubscribe_token():
    token = tokens.preferences_token(UID)
    assert tokens.read_preferences_token(token) == UID
    with pytest.raises(tokens.BadToken):
        tokens.read_unsubscribe_token(token)


def test_confirm_token_works_until_it_expires(settings):
    settings.BROADSHEET = {**settings.BROADSHEET, "CONFIRM_TOKEN_DAYS": 7}
    now = 1_800_000_000
    with mock.patch("django.core.signing.time.time", return_value=now - 7 * DAY + 60):
        fresh_enough = tokens.confirm_token(UID, [1])
    with mock.patch("django.core.signing.time.time", return_value=now - 7 * DAY - 60):
        too_old = tokens.confirm_token(UID, [1])
    with mock.patch("django.core.signing.time.time", return_value=now):
        assert tokens.read_confirm_token(fresh_enough) == (UID, [1])
        with pytest.raises(tokens.ExpiredToken):
            tokens.read_confirm_token(too_old)


def test_tokens_do_not_contain_the_address_and_are_url_safe():
    token = tokens.unsubscribe_token(UID, [1, 2])
    assert "@" not in token
    assert set(token) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


def test_confirm_token_uses_a_purpose_salt():
    token = tokens.confirm_token(UID, [1])
    with pytest.raises(signing.BadSignature):
        signing.TimestampSigner(sep=".").unsign(token)


@pytest.mark.parametrize(
    ("make", "salt", "payload"),
    [
        (lambda: tokens.unsubscribe_token(UID, [7, 3], 12), tokens.UNSUBSCRIBE_SALT, f"{UID.hex}-3-7_12"),
        (lambda: tokens.unsubscribe_token(UID), tokens.UNSUBSCRIBE_SALT, UID.hex),
        (lambda: tokens.preferences_token(UID), tokens.PREFERENCES_SALT, UID.hex),
    ],
)
def test_tokens_are_the_ones_djangos_signer_makes(make, salt, payload):
    """The engine signs with the key derived once per salt; the tokens are Django's, byte for byte,
    and follow a change of SECRET_KEY (a cached key must not outlive it)."""
    assert make() == signing.Signer(salt=salt, sep=".", algorithm="sha256").sign(payload)
    with override_settings(SECRET_KEY="another-secret-key-000000000000000000000000000"):
        assert make() == signing.Signer(salt=salt, sep=".", algorithm="sha256").sign(payload)
