"""Signal receivers of the subscribers app, connected in ``SubscribersConfig.ready()``."""

from django.conf import settings
from django.db import transaction

from subscribers import tasks
from subscribers.emails import STAFF_NOTIFY_VIA


def notify_staff_of_subscription(sender, subscriber, lists, via, **kwargs):
    """``subscribed`` receiver: in NOTIFY_STAFF_MODE "each", one staff notice per sign-up (after
    commit); "daily" mode leaves it to the digest (send_staff_digest)."""
    broadsheet = settings.BROADSHEET
    if via not in STAFF_NOTIFY_VIA or not broadsheet["NOTIFY_STAFF"] or broadsheet["NOTIFY_STAFF_MODE"] != "each":
        return
    subscriber_id, list_ids = subscriber.pk, [mlist.pk for mlist in lists]
    transaction.on_commit(lambda: tasks.notify_staff.enqueue(subscriber_id, list_ids))
