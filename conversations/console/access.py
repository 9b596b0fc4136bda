"""Access ends when the account loses it, open sockets included.

Pages, the console API and the calendar feed check the account on every request (conversations/console/permissions.py:
`is_agent`, `is_supervisor`). A socket is checked once, when it opens, so every change that can take a right
away pushes `access.revoked` to the account's `user.<id>` group after the change commits: a user removed
from a group (any group: rights may hang on more than `agents`), a group emptied, renamed or deleted, an
account saved (as inactive, not staff, with a new password...), or deleted. Each staff socket then
signs its session in again, as Django does on every request, and closes with 4401 if the session no
longer signs anyone in (inactive, deleted, password changed) or 4403 if the account no longer passes the
socket's own rule (the console: an agent; the monitor: active staff).
A push that says nothing changed costs one query per open socket, so the signals err on the side of
sending. The sockets join the group before their first check, so a change that commits between the two
still reaches them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete

from conversations import realtime

# Saving only these fields (a sign-in updates last_login) cannot take a right away. A new password can:
# it ends the account's other sessions, sockets included.
HARMLESS_FIELDS = frozenset({"last_login", "first_name", "last_name", "email"})


def revoke(user_ids: Iterable[object]) -> None:
    """Tell every staff socket of these accounts to check their access again, once the change commits."""
    groups = [realtime.user_group(user_id) for user_id in dict.fromkeys(user_ids) if user_id is not None]
    if groups:
        realtime.publish(groups, realtime.access_revoked())


def _members(group: Group) -> list[int]:
    return list(group.user_set.values_list("pk", flat=True))


def _membership_changed(
    sender: Any, instance: Any, action: str, reverse: bool, pk_set: set[Any] | None, **kw: Any
) -> None:
    if action == "post_remove":
        revoke((pk_set or ()) if reverse else [instance.pk])
    elif action == "pre_clear":  # afterwards nobody knows who was in it
        revoke(_members(instance) if reverse else [instance.pk])


def _user_saved(sender: Any, instance: Any, created: bool, update_fields: Iterable[str] | None, **kw: Any) -> None:
    if created or (update_fields is not None and set(update_fields) <= HARMLESS_FIELDS):
        return
    revoke([instance.pk])


def _user_deleted(sender: Any, instance: Any, **kw: Any) -> None:
    revoke([instance.pk])


def _group_saved(sender: Any, instance: Group, created: bool, **kw: Any) -> None:
    if not created:  # a renamed `agents` group is no longer the agents group
        revoke(_members(instance))


def _group_deleted(sender: Any, instance: Group, **kw: Any) -> None:
    revoke(_members(instance))


def _team_members_changed(
    sender: Any, instance: Any, action: str, reverse: bool, pk_set: set[Any] | None, **kw: Any
) -> None:
    """A change of a team's members changes which queues their consoles hear of: they rejoin them."""
    if action in ("post_add", "post_remove"):
        revoke((pk_set or ()) if not reverse else [instance.pk])
    elif action == "pre_clear":
        revoke(list(instance.members.values_list("pk", flat=True)) if not reverse else [instance.pk])


def connect_signals() -> None:
    from conversations.models import Team

    m2m_changed.connect(_team_members_changed, sender=Team.members.through, dispatch_uid="talia_access_team_members")
    user_model = get_user_model()
    m2m_changed.connect(_membership_changed, sender=user_model.groups.through, dispatch_uid="talia_access_groups")
    post_save.connect(_user_saved, sender=user_model, dispatch_uid="talia_access_user_saved")
    post_delete.connect(_user_deleted, sender=user_model, dispatch_uid="talia_access_user_deleted")
    post_save.connect(_group_saved, sender=Group, dispatch_uid="talia_access_group_saved")
    pre_delete.connect(_group_deleted, sender=Group, dispatch_uid="talia_access_group_deleted")
