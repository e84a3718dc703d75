"""Signal receivers of the automations app (thin: call the workflow) and ``connect()``, which
``AutomationsConfig.ready()`` calls."""

from automations import scheduler, tasks
from subscribers.signals import subscribed, unsubscribed


def handle_subscribed(sender, subscriber, lists, via, at, **kwargs):
    """``subscribers.signals.subscribed`` receiver (inside the subscribing transaction): enter the
    lists' automations, and tick after commit so a welcome email goes within seconds."""
    if scheduler.enroll(subscriber, lists, via=via, at=at):
        tasks.kick()


def handle_unsubscribed(sender, subscriber, lists, at=None, **kwargs):
    """``subscribers.signals.unsubscribed`` receiver: leaving a list stops its automations."""
    scheduler.stop(subscriber, lists, at=at)


def connect() -> None:
    # dispatch_uid: connected once even if ready() runs again (tests, autoreload).
    subscribed.connect(handle_subscribed, dispatch_uid="automations.subscribed")
    unsubscribed.connect(handle_unsubscribed, dispatch_uid="automations.unsubscribed")
