import datetime
from urllib.parse import urlencode

from django import forms
from django.utils import timezone
from django.utils.dateformat import format as date_format

from schemes.plans.selectors import plans_for
from sites.scoping import scope_for

from .metrics import Filters

# The location filter lists the upper levels only (regions, districts, wards): a select of every
# village would be thousands long.
LOCATION_FILTER_DEPTH = 3


class LocationChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, location):
        return f"{'— ' * (location.depth - 1)}{location.name}"


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self):
        super().__init__(format="%Y-%m-%d")


class DashboardFilterForm(forms.Form):
    """Plan, location and period, offered only within what the viewer may see. A page tied to one plan
    counts that plan only: it offers no plan to choose."""

    plan = forms.ModelChoiceField(queryset=None, required=False, empty_label="All plans")
    location = LocationChoiceField(queryset=None, required=False, empty_label="All your locations")
    start = forms.DateField(required=False, label="From", widget=DateInput())
    end = forms.DateField(required=False, label="To", widget=DateInput())

    FIELDS = ("plan", "location", "start", "end")

    def __init__(self, data, *, user, page):
        if not any(name in data for name in self.FIELDS):
            data = self.defaults(page)
        super().__init__(data)
        self.fixed_plan_id = getattr(page, "plan_id", None)  # reports have no page
        if self.fixed_plan_id:
            del self.fields["plan"]
        else:
            self.fields["plan"].queryset = plans_for(user).order_by("name")
        self.fields["location"].queryset = scope_for(user).locations().filter(
            depth__lte=LOCATION_FILTER_DEPTH).order_by("path")

    @classmethod
    def defaults(cls, page):
        if not page.default_period_months:
            return {}
        today = timezone.localdate()
        year, month = divmod(today.year * 12 + today.month - 1 - (page.default_period_months - 1), 12)
        return {"start": datetime.date(year, month + 1, 1).isoformat()}

    def clean(self):
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if start and end and end < start:
            # The error drops "To" (see filters): the figures run from "From" on, as the message says.
            self.add_error("end", f"'To' ({date_format(end, 'j M Y')}) is before 'From' "
                                  f"({date_format(start, 'j M Y')}): the figures run from 'From' on.")
        return data

    def filters(self):
        """The valid choices as Filters; a choice outside the viewer's reach is dropped (and shown as an
        error on the form)."""
        self.is_valid()
        data = getattr(self, "cleaned_data", {})
        location = data.get("location")
        plan = data.get("plan")
        return Filters(plan_id=self.fixed_plan_id or (plan.pk if plan else None),
                       location_path=location.path if location else "",
                       start=data.get("start"), end=data.get("end"))

    def query(self):
        """The filters as a query string, for the CSV links."""
        return urlencode({name: self.data[name] for name in self.FIELDS
                          if name in self.fields and self.data.get(name) and name not in self.errors})
