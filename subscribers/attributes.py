"""Subscriber attributes (merge fields): flat name -> text pairs, and the rules they follow.

``Subscriber.attributes`` is a JSON object. What an editor puts in it is checked here, by the
admin's key/value editor (subscribers.admin_forms.AttributesField).

- A name is letters, digits and underscores, starting with a letter, at most 50 characters;
  what an editor types is normalised first as import column names are (lowercase, spaces to
  underscores): "Member since" is ``member_since``. Names are unique.
- A value is one line of text, at most 500 characters, without control characters (PostgreSQL
  cannot store NUL in JSON; a line break would end up in a header or a CSV row). Values are text:
  no nested objects or lists (a merge field is a piece of text).
- At most 50 attributes per subscriber.
"""

import json
import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from mail.addresses import has_control_characters

MAX_ATTRIBUTES = 50
MAX_NAME_LENGTH = 50
MAX_VALUE_LENGTH = 500
NAME_PATTERN = re.compile(r"[^\W\d_]\w*")


def normalise_name(text: str) -> str:
    """A typed name or CSV column title as an attribute name: trimmed, lowercase, spaces to underscores."""
    return "_".join(text.strip().lower().split())


def display_value(value) -> str:
    """A stored value as the editor shows it: text as is; anything else (from older data) as JSON."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def check_name(name: str) -> None:
    if len(name) > MAX_NAME_LENGTH:
        raise ValidationError(
            _("“%(name)s…” is too long: at most %(max)s characters.") % {"name": name[:20], "max": MAX_NAME_LENGTH}
        )
    if not NAME_PATTERN.fullmatch(name):
        raise ValidationError(
            _("“%(name)s” is not a valid name: use letters, digits and underscores, starting with a letter.")
            % {"name": name[:MAX_NAME_LENGTH]}
        )


def check_value(name: str, value: str) -> None:
    if len(value) > MAX_VALUE_LENGTH:
        raise ValidationError(
            _("The value of “%(name)s” is too long: at most %(max)s characters.")
            % {"name": name, "max": MAX_VALUE_LENGTH}
        )
    if has_control_characters(value):
        raise ValidationError(
            _("The value of “%(name)s” contains a line break or another control character.") % {"name": name}
        )


def attributes_from_pairs(pairs) -> dict[str, str]:
    """The attributes an editor entered as (name, value) rows: blank rows skipped, names normalised,
    values trimmed. Raises ValidationError listing every problem (row numbers from 1)."""
    attributes: dict[str, str] = {}
    errors = []
    for row, (raw_name, raw_value) in enumerate(pairs, start=1):
        name, value = normalise_name(raw_name or ""), (raw_value or "").strip()
        if not name and not value:
            continue
        try:
            if not name:
                raise ValidationError(_("Give the value “%(value)s” a name.") % {"value": value[:40]})
            check_name(name)
            if name in attributes:
                raise ValidationError(_("“%(name)s” is there twice.") % {"name": name})
            check_value(name, value)
        except ValidationError as error:
            errors.extend(_("Row %(row)s: %(message)s") % {"row": row, "message": m} for m in error.messages)
            continue
        attributes[name] = value
    if len(attributes) > MAX_ATTRIBUTES:
        errors.append(_("At most %(max)s fields per subscriber.") % {"max": MAX_ATTRIBUTES})
    if errors:
        raise ValidationError(errors)
    return attributes
