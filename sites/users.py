"""Wagtail's user admin, with one rule added: only a superuser makes, unmakes, edits or deletes a
superuser. Without it a System administrator could tick "Administrator" and escape every scope."""

from django.core.exceptions import PermissionDenied
from wagtail.users.views import users


class SuperuserGuardMixin:
    def setup(self, request, *args, **kwargs):
        super().setup(request, *args, **kwargs)
        target = getattr(self, "object", None)
        if target is not None and target.is_superuser and not request.user.is_superuser:
            raise PermissionDenied("Only a superuser may change another superuser.")

    def get_form(self, form_class=None):
        form = super().get_form(form_class)
        if not self.request.user.is_superuser:
            form.fields.pop("is_superuser", None)
        return form


class CreateView(SuperuserGuardMixin, users.CreateView):
    pass


class EditView(SuperuserGuardMixin, users.EditView):
    pass


class DeleteView(SuperuserGuardMixin, users.DeleteView):
    pass


class UserViewSet(users.UserViewSet):
    add_view_class = CreateView
    edit_view_class = EditView
    delete_view_class = DeleteView
