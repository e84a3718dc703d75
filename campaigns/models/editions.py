from django.db import models

from .campaign import Campaign


class CampaignEdition(models.Model):
    """A campaign's version in another language: the issue's translation (Wagtail localisation),
    rendered once when the campaign starts. The campaign's own subject/html/text are the version in
    the issue's language, which everyone without an edition in their language receives."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="editions")
    language = models.CharField(max_length=16)
    page = models.ForeignKey(
        "campaigns.NewsletterIssuePage", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    page_revision = models.ForeignKey(
        "wagtailcore.Revision", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    subject = models.CharField(max_length=998, blank=True)
    html = models.TextField(blank=True)
    text = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "language"], name="unique_campaign_edition")]

    def __str__(self):
        return f"{self.campaign_id}: {self.language}"
