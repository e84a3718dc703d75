"""One permission pattern for the admin of both apps, as in ``wagtail.contrib.redirects``.

Each model's ``ModelPermissionPolicy`` is registered once (``register_permission_policy`` in the
app's ``ready()``, or by its ModelViewSet) and looked up at request time; a
``PermissionPolicyChecker`` guards the views, and the menu items ask the same policy, so a menu
entry is shown exactly when its views would open.
"""

from functools import wraps

from django.template.response import TemplateResponse
from django.utils.functional import cached_property
from wagtail.admin.auth import PermissionPolicyChecker
from wagtail.admin.menu import MenuItem
from wagtail.permissions import policy_registry


class ModelPolicyChecker(PermissionPolicyChecker):
    """Wagtail's PermissionPolicyChecker over ``model``'s registered policy, answering 403.

    Wagtail's own checker redirects to the dashboard with a message; a URL that must not be used
    says 403 here, with a page naming the permission (``denied_message``) to ask for.
    """

    def __init__(self, model, *, denied_message: str):
        self.model = model
        self.denied_message = denied_message

    @cached_property
    def policy(self):
        # Looked up on first use, not at import: the registry is filled in AppConfig.ready().
        return policy_registry.get_by_type(self.model)

    def user_has(self, user, action: str) -> bool:
        return self.policy.user_has_permission(user, action)

    def require(self, action: str):
        """A view decorator: the view runs only for users the policy allows ``action``."""

        def decorator(view_func):
            @wraps(view_func)
            def wrapped(request, *args, **kwargs):
                if self.user_has(request.user, action):
                    return view_func(request, *args, **kwargs)
                return self.forbidden(request)

            return wrapped

        return decorator

    def forbidden(self, request):
        return TemplateResponse(request, "admin/forbidden.html", {"message": self.denied_message}, status=403)

    def menu_item_class(self, action: str) -> type[MenuItem]:
        """A MenuItem class shown to the users the policy allows ``action`` (a ViewSet's menu_item_class)."""
        checker = self

        class PolicyMenuItem(MenuItem):
            def is_shown(self, request):
                return checker.user_has(request.user, action)

        return PolicyMenuItem
