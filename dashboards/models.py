"""Dashboards are Wagtail pages (content: drafts, revisions, preview) kept under one "Dashboards"
folder page. People open them in the admin (views.py), where every figure is computed for the viewer."""

from django import forms
from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from modelcluster.fields import ParentalManyToManyField
from wagtail.admin.panels import FieldPanel, MultiFieldPanel, TitleFieldPanel
from wagtail.fields import StreamField
from wagtail.models import Page

from .blocks import DashboardStreamBlock


class AdminAddressMixin:
    """Dashboards are read in the admin, not served by Wagtail: their folder sits beside the site's home
    page, outside every Site, so Wagtail would call them unreachable (the explorer's "no site record"
    warning) and have no "View live" link. Their address is their admin view: each page class using
    this mixin gives it as `admin_path()`."""

    def get_url_parts(self, request=None):
        if self.pk is None:
            return None
        return (None, settings.WAGTAILADMIN_BASE_URL.rstrip("/"), self.admin_path())

    def get_site(self):
        return None  # Wagtail's own would look the (absent) Site up by the address' site id


class DashboardIndexPage(AdminAddressMixin, Page):
    """The folder every dashboard lives in (one per installation)."""

    parent_page_types = ["wagtailcore.Page"]
    subpage_types = ["dashboards.DashboardPage"]
    max_count = 1

    class Meta:
        verbose_name = "dashboards folder"

    def admin_path(self):
        return reverse("dashboards:index")

    def serve(self, request, *args, **kwargs):
        return redirect("dashboards:index")


class DashboardPage(AdminAddressMixin, Page):
    summary = models.CharField(max_length=250, blank=True,
                               help_text="One line shown in the list of dashboards.")
    # PROTECT: a plan's own dashboard must not quietly turn into one of every plan.
    plan = models.ForeignKey(
        "plans.BenefitPlan", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        verbose_name="benefit plan",
        help_text="Every figure on this dashboard counts this plan only (viewers cannot choose another); "
                  "empty: all plans, and viewers may choose one.")
    body = StreamField(DashboardStreamBlock(), blank=True, use_json_field=True)
    viewer_groups = ParentalManyToManyField(
        Group, blank=True, related_name="+", verbose_name="who may view it",
        help_text="Only members of these groups (and superusers) see this dashboard; none chosen: everyone "
                  "who may use the admin. Each viewer sees only the figures of their own locations.")
    default_period_months = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Start with the last N months shown (viewers can change the period); "
                                         "empty: all time.")
    show_filters = models.BooleanField(default=True, help_text="Let viewers filter by plan, location and period.")

    parent_page_types = ["dashboards.DashboardIndexPage"]
    subpage_types = []

    content_panels = [
        TitleFieldPanel("title", help_text="The dashboard's name in the menu and on the page."),
        FieldPanel("summary"),
        FieldPanel("plan"),
        FieldPanel("body"),
    ]
    # Page.settings_panels: scheduled publishing (e.g. a new dashboard shown from the first of the month).
    settings_panels = Page.settings_panels + [
        MultiFieldPanel([FieldPanel("viewer_groups", widget=forms.CheckboxSelectMultiple),
                         FieldPanel("show_filters"), FieldPanel("default_period_months")],
                        heading="Viewers and filters"),
    ]

    class Meta:
        verbose_name = "dashboard"

    def admin_path(self):
        return reverse("dashboards:view", kwargs={"page_id": self.pk})

    def serve(self, request, *args, **kwargs):
        # Dashboards are read in the admin, where access and the viewer's scope are checked.
        return redirect("dashboards:view", page_id=self.pk)

    def serve_preview(self, request, mode_name):
        from .rendering import dashboard_context

        return TemplateResponse(request, "dashboards/dashboard_preview.html",
                                dashboard_context(self, request, preview=True))
