"""Baselines: bare ARQ, a Celery chord, a bare Strawberry mutation, a naive subscription.

Each module here imports nothing from the project, so the Celery one runs in its own virtualenv.
"""
