"""Wagtail's user admin, with one rule added: only a superuser makes, unmakes, edits, deletes,
deactivates or gives a role to a superuser, on every path (the user's pages and the listing's bulk
actions). Without it a System administrator could tick "Administrator" and escape every scope, or
lock every superuser out."""

from django.core.exceptions import PermissionDenied
from wagtail.users.views import users
from wagtail.users.views.bulk_actions.assign_role import AssignRoleBulkAction
from wagtail.users.views.bulk_actions.delete import DeleteBulkAction
from wagtail.users.views.bulk_actions.set_active_state import SetActiveStateBulkAction


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


class SuperuserGuardBulkMixin:
    """A bulk action leaves out the superusers ticked by someone who is not one (listed on the
    confirmation page among those they may not change)."""

    def check_perm(self, obj):
        return super().check_perm(obj) and (not obj.is_superuser or self.request.user.is_superuser)


class GuardedSetActiveState(SuperuserGuardBulkMixin, SetActiveStateBulkAction):
    pass


class GuardedAssignRole(SuperuserGuardBulkMixin, AssignRoleBulkAction):
    pass


class GuardedDelete(SuperuserGuardBulkMixin, DeleteBulkAction):
    pass


GUARDED_BULK_ACTIONS = (GuardedSetActiveState, GuardedAssignRole, GuardedDelete)
