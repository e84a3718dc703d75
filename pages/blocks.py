"""A StreamField block that puts the subscribe form on any page.

The form posts to the chosen SubscribePage, which supplies the consent sentence (stored with
each subscription), handles the POST and shows errors and the thank-you text.
"""

from django.utils import translation
from django.utils.translation import gettext_lazy as _
from wagtail import blocks

from subscribers.forms import SubscribeForm
from subscribers.models import MailingList


class SubscribeFormBlock(blocks.StructBlock):
    heading = blocks.CharBlock(required=False, max_length=150, label=_("Heading"))
    page = blocks.PageChooserBlock(
        page_type="pages.SubscribePage",
        label=_("Subscribe page"),
        help_text=_("The subscribe page whose consent sentence is shown and which receives the form."),
    )

    class Meta:
        icon = "mail"
        label = _("Subscribe form")
        template = "subscribers/blocks/subscribe_form.html"

    def get_context(self, value, parent_context=None):
        context = super().get_context(value, parent_context=parent_context)
        page = value.get("page")
        context["heading"] = value.get("heading")
        # Hide the form when the chosen page was unpublished or deleted, rather than break the host page.
        # The subscribe page in the reader's language when it has been translated (Wagtail i18n):
        # its URL carries the language the new subscriber's emails will be in.
        page = page.localized if page else None
        context["page"] = page.specific if page and page.live else None
        request = (parent_context or {}).get("request")
        context["form"] = SubscribeForm(
            lists=MailingList.objects.offered_in(translation.get_language()),
            initial={"source": request.path if request else ""},
            auto_id="id_subscribe_%s",
        )
        return context
