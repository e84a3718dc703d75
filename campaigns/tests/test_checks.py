"""The system check that every issue body block has an email template."""

from django.core import checks
from wagtail import blocks

from campaigns.blocks import IssueBodyBlock
from campaigns.checks import blocks_without_email_template, check_block_email_templates


class BodyWithAPoll(IssueBodyBlock):
    poll = blocks.CharBlock()


def test_every_issue_body_block_has_its_email_template():
    assert blocks_without_email_template(IssueBodyBlock()) == []
    assert check_block_email_templates() == []


def test_a_block_without_an_email_template_is_named():
    assert blocks_without_email_template(BodyWithAPoll()) == ["poll"]


def test_the_check_is_registered_and_reports_an_error(monkeypatch):
    monkeypatch.setattr("campaigns.checks.IssueBodyBlock", BodyWithAPoll)
    errors = [
        message
        for message in checks.run_checks(include_deployment_checks=False, databases=[])
        if message.id == "campaigns.E001"
    ]
    assert [error.msg for error in errors] == ["The issue body block 'poll' has no email template."]
