"""Visitor links under /newsletter/ (see newsletter_site/urls.py). Tokens: subscribers/tokens.py."""

from django.urls import path

from subscribers import views

app_name = "subscribers"
urlpatterns = [
    path("confirm/<str:token>/", views.confirm, name="confirm"),
    path("unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path("unsubscribe/<str:token>/one-click/", views.one_click, name="one_click"),
    path("preferences/<str:token>/", views.preferences, name="preferences"),
]
