"""Configuration: the `Settings` object and the template registry file."""

from config.settings import Settings

__all__ = ["Settings"]
