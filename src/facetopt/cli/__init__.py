"""Typer apps: the only layer that imports typer or prints."""
