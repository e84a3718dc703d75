"""StreamField blocks of a newsletter issue. Each renders twice: a web template
(templates/campaigns/blocks/) and an email-safe, table-based one (templates/campaigns/email/blocks/)."""

from django.core.exceptions import ValidationError
from django.forms.utils import ErrorList
from django.utils.translation import gettext_lazy as _
from wagtail import blocks
from wagtail.blocks.struct_block import StructBlockValidationError
from wagtail.images.blocks import ImageChooserBlock


class HeadingBlock(blocks.StructBlock):
    text = blocks.CharBlock(max_length=200, label=_("Text"))
    level = blocks.ChoiceBlock(choices=[("h2", _("Heading 2")), ("h3", _("Heading 3"))], default="h2", label=_("Level"))

    class Meta:
        icon = "title"
        label = _("Heading")
        template = "campaigns/blocks/heading.html"


class ImageBlock(blocks.StructBlock):
    image = ImageChooserBlock(label=_("Image"))
    alt_text = blocks.CharBlock(
        max_length=250,
        label=_("Alt text"),
        help_text=_("Describes the image for screen readers and for mail clients that block images."),
    )
    caption = blocks.CharBlock(required=False, max_length=250, label=_("Caption"))

    class Meta:
        icon = "image"
        label = _("Image")
        template = "campaigns/blocks/image.html"


class LinkStructValue(blocks.StructValue):
    def url(self):
        page = self.get("page")
        if page:
            return page.full_url
        return self.get("link_url") or ""


class ButtonBlock(blocks.StructBlock):
    label = blocks.CharBlock(max_length=80, label=_("Label"))
    page = blocks.PageChooserBlock(required=False, label=_("Page"))
    link_url = blocks.URLBlock(required=False, label=_("or URL"))

    class Meta:
        icon = "link"
        label = _("Button")
        template = "campaigns/blocks/button.html"
        value_class = LinkStructValue

    def clean(self, value):
        value = super().clean(value)
        if bool(value.get("page")) == bool(value.get("link_url")):
            raise StructBlockValidationError(
                block_errors={
                    "link_url": ErrorList([ValidationError(_("Choose a page or enter a URL (one of the two)."))])
                }
            )
        return value


class QuoteBlock(blocks.StructBlock):
    text = blocks.TextBlock(label=_("Text"))
    attribution = blocks.CharBlock(required=False, max_length=200, label=_("Attribution"))

    class Meta:
        icon = "openquote"
        label = _("Quote")
        template = "campaigns/blocks/quote.html"


class TeaserBlock(blocks.StructBlock):
    image = ImageChooserBlock(required=False, label=_("Image"))
    alt_text = blocks.CharBlock(required=False, max_length=250, label=_("Alt text"))
    title = blocks.CharBlock(max_length=200, label=_("Title"))
    summary = blocks.TextBlock(required=False, label=_("Summary"))
    page = blocks.PageChooserBlock(required=False, label=_("Page"))
    link_url = blocks.URLBlock(required=False, label=_("or URL"))

    class Meta:
        icon = "doc-full"
        label = _("Teaser")
        value_class = LinkStructValue


class StoryBlock(TeaserBlock):
    """One teaser across the full width: a picture, a title linking to the story, a summary.
    Digests (campaigns.autosend) are made of these, one per issue."""

    class Meta:
        icon = "doc-full"
        label = _("Story")
        template = "campaigns/blocks/story.html"
        value_class = LinkStructValue


class ArticleTeaserBlock(blocks.StructBlock):
    """Two articles side by side (stacked on narrow screens)."""

    left = TeaserBlock(label=_("Left"))
    right = TeaserBlock(label=_("Right"))

    class Meta:
        icon = "table"
        label = _("Two articles")
        template = "campaigns/blocks/article_teaser.html"


class IssueBodyBlock(blocks.StreamBlock):
    heading = HeadingBlock()
    paragraph = blocks.RichTextBlock(
        features=["bold", "italic", "link", "document-link", "ol", "ul", "h3", "h4"],
        template="campaigns/blocks/paragraph.html",
        label=_("Paragraph"),
    )
    image = ImageBlock()
    button = ButtonBlock()
    quote = QuoteBlock()
    divider = blocks.StaticBlock(
        admin_text=_("Divider line"),
        icon="horizontalrule",
        template="campaigns/blocks/divider.html",
        label=_("Divider"),
    )
    article_teaser = ArticleTeaserBlock()
    story = StoryBlock()
