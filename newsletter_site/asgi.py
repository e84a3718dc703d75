import os

from django.core.asgi import get_asgi_application

from newsletter_site.startup import refuse_to_start_on_check_errors

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "newsletter_site.settings.production")
application = get_asgi_application()
refuse_to_start_on_check_errors()
