"""System checks of the campaigns app (registered in signal_handlers.connect())."""

from django.core import checks
from django.template import TemplateDoesNotExist
from django.template.loader import get_template

from campaigns.blocks import IssueBodyBlock

# campaigns/email/issue.html includes this template for each block of the issue body.
EMAIL_BLOCK_TEMPLATE = "campaigns/email/blocks/{block_type}.html"


def blocks_without_email_template(stream_block) -> list[str]:
    """The names of ``stream_block``'s child blocks that have no email template."""
    missing = []
    for name in stream_block.child_blocks:
        try:
            get_template(EMAIL_BLOCK_TEMPLATE.format(block_type=name))
        except TemplateDoesNotExist:
            missing.append(name)
    return missing


def check_block_email_templates(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """Every block an editor can put in an issue body renders in the email too.

    Without this, a block added to IssueBodyBlock without its email template fails only when a
    campaign starts (the render raises TemplateDoesNotExist).
    """
    return [
        checks.Error(
            f"The issue body block {name!r} has no email template.",
            hint=f"Add templates/{EMAIL_BLOCK_TEMPLATE.format(block_type=name)}.",
            obj=IssueBodyBlock,
            id="campaigns.E001",
        )
        for name in blocks_without_email_template(IssueBodyBlock())
    ]
