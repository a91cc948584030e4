"""Create/edit/delete views that hand the work to services, which check, save and audit."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.shortcuts import redirect


class ServiceFormMixin:
    """Subclasses define `save_with_service(form)`; a ValidationError from the service goes back onto the form."""

    def save_instance(self):
        return self.save_with_service(self.form)

    def form_valid(self, form):
        try:
            with transaction.atomic():
                return super().form_valid(form)
        except ValidationError as error:
            form.apply_service_errors(error)
            self.produced_error_message = self.get_error_message()
            return self.form_invalid(form)


class ServiceDeleteMixin:
    """Subclasses define `delete_with_service()`, a soft delete through a service; refusals are shown as messages."""

    def delete_action(self):
        self.delete_with_service()

    def form_valid(self, form):
        try:
            return super().form_valid(form)
        except ValidationError as error:
            messages.error(self.request, " ".join(error.messages))
            return redirect(self.request.path)
