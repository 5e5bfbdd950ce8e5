"""Who a policy decision is recorded as: a user, a name given by the caller (`--by`), or the CLI."""


def actor_name(user) -> str:
    """The name stored on waivers, events and intent changes: a username, the given name, or `cli`."""
    if user is None:
        return "cli"
    if isinstance(user, str):
        return user or "cli"
    return user.get_username()


def audit_actor(user):
    """What `audit_record` gets: the user itself when there is one (so the entry links it), else the name."""
    return user if hasattr(user, "get_username") else actor_name(user)
