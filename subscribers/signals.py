"""Signals other apps listen to, so subscribers never imports them."""

from django.dispatch import Signal

# Sent inside the unsubscribe transaction when a subscriber left at least one list.
# Arguments: subscriber, lists (the MailingLists left), method, campaign_id (int or None:
# the campaign whose email link was used), at (datetime).
unsubscribed = Signal()

# Sent inside the transaction that made subscriptions active (services.became_subscribed), once
# per workflow call. Arguments: subscriber, lists (the MailingLists now subscribed), via (a
# SubscriberEvent.Via: confirmation, form, preferences, import), at (datetime). Receivers that
# send email enqueue with transaction.on_commit, so nothing leaves for a rolled-back change.
subscribed = Signal()
