"""Fixtures shared by the sending tests."""

import pytest

from campaigns.tests.factories import started_campaign
from campaigns.tests.fake_smtp import FakeSMTPServer


@pytest.fixture(params=[True, False], ids=["pipelining", "sequential"])
def smtp_server(request, settings):
    """The fake server with PIPELINING advertised (one write for MAIL/RCPT/DATA) and without:
    every SMTP test that uses it runs against both of the transport's paths."""
    with FakeSMTPServer(pipelining=request.param) as server:
        settings.MAILERS = server.mailers_setting()
        yield server


@pytest.fixture
def campaign(issue_page, django_capture_on_commit_callbacks):
    """A started campaign to 5 readers (reader0..4@example.com) whose batches have not run."""
    return started_campaign(issue_page, 5, django_capture_on_commit_callbacks)
