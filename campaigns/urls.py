from django.urls import path

from campaigns import tracking_views

app_name = "campaigns"
urlpatterns = [
    # Own tracking for plain SMTP (campaigns.click_tracking); the paths are in sent emails: keep them.
    path("c/<str:signed>/", tracking_views.click, name="click"),
    path("o/<int:campaign_id>.gif", tracking_views.open_pixel, name="open"),
]
