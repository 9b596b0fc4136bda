"""Which agents are online: those with a console socket open, counted across every Daphne process.

Each console socket is a member of one Redis sorted set, scored by the last time it was heard from (on
connect and on every ping the console sends every 25 s). A socket that closes cleanly leaves at once; one
whose process died simply stops being refreshed and drops out after PRESENCE_TTL_S. When Redis cannot be
reached presence is unknown (None), and nobody is told that no agent is online.
"""

from __future__ import annotations

import logging
import time

import redis
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser

from conversations import realtime
from talia.redis_client import get_redis

logger = logging.getLogger(__name__)

# Comfortably more than the console's 25 s ping interval, so one late ping does not flicker an agent away.
PRESENCE_TTL_S = 75


def _key() -> str:
    return f"{settings.REDIS_PREFIX}:console:sockets"


def _member(user_id: int, channel_name: str) -> str:
    return f"{user_id} {channel_name}"


def touch(user_id: int, channel_name: str) -> None:
    """This console socket is alive (connected or pinged just now)."""
    try:
        get_redis().zadd(_key(), {_member(user_id, channel_name): time.time()})
    except redis.RedisError:
        logger.warning("Could not record the presence of agent %s", user_id, exc_info=True)


def leave(user_id: int, channel_name: str) -> None:
    try:
        get_redis().zrem(_key(), _member(user_id, channel_name))
    except redis.RedisError:
        logger.warning("Could not record that agent %s left", user_id, exc_info=True)


def online_agent_ids() -> set[int] | None:
    """Ids of the users with a live console socket; None when Redis cannot say."""
    client = get_redis()
    try:
        client.zremrangebyscore(_key(), "-inf", time.time() - PRESENCE_TTL_S)
        members = client.zrange(_key(), 0, -1)
    except redis.RedisError:
        logger.warning("Could not read agent presence", exc_info=True)
        return None
    ids = set()
    for member in members:
        user_id, _, _channel = (member.decode() if isinstance(member, bytes) else str(member)).partition(" ")
        if user_id.isdigit():
            ids.add(int(user_id))
    return ids


def online_agents() -> list[AbstractBaseUser] | None:
    """The online agents themselves (active users only), by name; None when presence is unknown."""
    ids = online_agent_ids()
    if ids is None:
        return None
    users = get_user_model().objects.filter(pk__in=ids, is_active=True)
    return sorted(users, key=lambda user: (user.get_full_name() or user.get_username()).lower())  # type: ignore[attr-defined]


def announce() -> None:
    """Tell the supervisors' monitor who is online now (after a console socket opens or closes)."""
    agents = online_agents()
    if agents is not None:
        realtime.publish([realtime.MONITOR_GROUP], realtime.agents_online(list(agents)))


def online_count() -> int | None:
    agents = online_agents()
    return None if agents is None else len(agents)
