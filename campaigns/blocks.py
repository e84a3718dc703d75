"""StreamField blocks of a newsletter issue. Each renders twice: a web template
(templates/campaigns/blocks/) and an email-safe, table-based one (templates/campaigns/email/blocks/)."""

from django.core.exceptions import ValidationError
from django.forms.utils import ErrorList
from wagtail import blocks
from wagtail.blocks.struct_block import StructBlockValidationError
from wagtail.images.blocks import ImageChooserBlock


class HeadingBlock(blocks.StructBlock):
    text = blocks.CharBlock(max_length=200)
    level = blocks.ChoiceBlock(choices=[("h2", "Heading 2"), ("h3", "Heading 3")], default="h2")

    class Meta:
        icon = "title"
        template = "campaigns/blocks/heading.html"


class ImageBlock(blocks.StructBlock):
    image = ImageChooserBlock()
    alt_text = blocks.CharBlock(
        max_length=250, help_text="Describes the image for screen readers and for mail clients that block images."
    )
    caption = blocks.CharBlock(required=False, max_length=250)

    class Meta:
        icon = "image"
        template = "campaigns/blocks/image.html"


class LinkStructValue(blocks.StructValue):
    def url(self):
        page = self.get("page")
        if page:
            return page.full_url
        return self.get("link_url") or ""


class ButtonBlock(blocks.StructBlock):
    label = blocks.CharBlock(max_length=80)
    page = blocks.PageChooserBlock(required=False)
    link_url = blocks.URLBlock(required=False, label="or URL")

    class Meta:
        icon = "link"
        template = "campaigns/blocks/button.html"
        value_class = LinkStructValue

    def clean(self, value):
        value = super().clean(value)
        if bool(value.get("page")) == bool(value.get("link_url")):
            raise StructBlockValidationError(
                block_errors={
                    "link_url": ErrorList([ValidationError("Choose a page or enter a URL (one of the two).")])
                }
            )
        return value


class QuoteBlock(blocks.StructBlock):
    text = blocks.TextBlock()
    attribution = blocks.CharBlock(required=False, max_length=200)

    class Meta:
        icon = "openquote"
        template = "campaigns/blocks/quote.html"


class TeaserBlock(blocks.StructBlock):
    image = ImageChooserBlock(required=False)
    alt_text = blocks.CharBlock(required=False, max_length=250)
    title = blocks.CharBlock(max_length=200)
    summary = blocks.TextBlock(required=False)
    page = blocks.PageChooserBlock(required=False)
    link_url = blocks.URLBlock(required=False, label="or URL")

    class Meta:
        icon = "doc-full"
        value_class = LinkStructValue


class ArticleTeaserBlock(blocks.StructBlock):
    """Two articles side by side (stacked on narrow screens)."""

    left = TeaserBlock()
    right = TeaserBlock()

    class Meta:
        icon = "table"
        template = "campaigns/blocks/article_teaser.html"


class IssueBodyBlock(blocks.StreamBlock):
    heading = HeadingBlock()
    paragraph = blocks.RichTextBlock(
        features=["bold", "italic", "link", "document-link", "ol", "ul", "h3", "h4"],
        template="campaigns/blocks/paragraph.html",
    )
    image = ImageBlock()
    button = ButtonBlock()
    quote = QuoteBlock()
    divider = blocks.StaticBlock(
        admin_text="Divider line", icon="horizontalrule", template="campaigns/blocks/divider.html"
    )
    article_teaser = ArticleTeaserBlock()
