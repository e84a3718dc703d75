import os

from django.core.wsgi import get_wsgi_application

from newsletter_site.startup import refuse_to_start_on_check_errors

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "newsletter_site.settings.production")
application = get_wsgi_application()
refuse_to_start_on_check_errors()
