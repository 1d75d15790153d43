"""Integrations with worker servers; each module imports its server lazily.

``microrequests.contrib.gunicorn`` and ``microrequests.contrib.celery`` are
never imported by ``import microrequests``.
"""
