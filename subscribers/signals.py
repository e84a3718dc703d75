"""Signals other apps listen to, so subscribers never imports them."""

from django.dispatch import Signal

# Sent inside the unsubscribe transaction when a subscriber left at least one list.
# Arguments: subscriber, lists (the MailingLists left), method, campaign_id (int or None:
# the campaign whose email link was used), at (datetime).
unsubscribed = Signal()
