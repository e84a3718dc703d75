"""Fixtures shared by the sending tests."""

import os

import pytest

from campaigns.tests.factories import make_user, started_campaign
from campaigns.tests.fake_smtp import FakeSMTPServer


@pytest.fixture(params=[True, False], ids=["pipelining", "sequential"])
def smtp_server(request, settings):
    """The fake server with PIPELINING advertised (one write for MAIL/RCPT/DATA) and without:
    every SMTP test that uses it runs against both of the transport's paths."""
    with FakeSMTPServer(pipelining=request.param) as server:
        settings.MAILERS = server.mailers_setting()
        yield server


class FakeClock:
    """The throttle's ``clock`` and ``sleep``: sleeping moves the clock on and is recorded."""

    def __init__(self, start: float):
        self.start = start  # an hour boundary, far from the real time
        self.now = start + 60.0
        self.slept = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def clock():
    """A FakeClock one minute past the hour boundary ``clock.start``."""
    return FakeClock(start=1_000_000 * 3600.0)


@pytest.fixture
def editor(django_user_model):
    """An admin user who edits and publishes pages but may not send campaigns."""
    return make_user(django_user_model, "editor")


@pytest.fixture
def sender(django_user_model):
    """An editor who may also send campaigns (campaigns.send_campaign)."""
    return make_user(django_user_model, "sender", send=True)


@pytest.fixture
def campaign(issue_page, django_capture_on_commit_callbacks):
    """A started campaign to 5 readers (reader0..4@example.com) whose batches have not run."""
    return started_campaign(issue_page, 5, django_capture_on_commit_callbacks)


@pytest.fixture
def redis_url():
    url = os.environ.get("REDIS_URL")
    if not url:
        pytest.skip("needs Redis: set REDIS_URL=redis://... (make test-services)")
    return url
