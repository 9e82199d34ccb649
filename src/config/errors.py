"""The error of a user's mistake in the config, printed as one line by the entry points."""


class ConfigError(ValueError):
    """A user's mistake in the config: the message is the whole story, in one line."""
