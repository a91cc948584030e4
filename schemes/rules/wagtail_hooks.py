from django.urls import path
from wagtail import hooks

from . import views


@hooks.register("register_admin_urls")
def rules_urls():
    return [path("rules/check/", views.rule_check, name="rules_check")]
