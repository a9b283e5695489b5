"""The one job application: every domain's task blueprint is registered here.

Domains declare tasks in their own ``tasks.py`` on a ``procrastinate.Blueprint`` (see
``namma.system.tasks``) and are added below with a namespace, so task names read
``<domain>:<task>``.
"""

from __future__ import annotations

import procrastinate

from namma.cob import tasks as cob_tasks
from namma.collections import tasks as collection_tasks
from namma.documents import tasks as document_tasks
from namma.kit.cache import Cache
from namma.kit.db import Database
from namma.kit.jobs import job_connector, job_runtime
from namma.loans import tasks as loan_tasks
from namma.notifications import tasks as notification_tasks
from namma.reports import tasks as report_tasks
from namma.system import tasks as system_tasks

job_app = procrastinate.App(connector=job_connector())
job_app.add_tasks_from(system_tasks.blueprint, namespace="system")
job_app.add_tasks_from(loan_tasks.blueprint, namespace="loans")
job_app.add_tasks_from(collection_tasks.blueprint, namespace="collections")
job_app.add_tasks_from(document_tasks.blueprint, namespace="documents")
job_app.add_tasks_from(notification_tasks.blueprint, namespace="notifications")
job_app.add_tasks_from(cob_tasks.blueprint, namespace="cob")
job_app.add_tasks_from(report_tasks.blueprint, namespace="reports")


# What running jobs get from this process (`namma.kit.jobs.job_runtime`): set at start-up.
runtime = job_runtime


def job_database() -> Database:
    return runtime.database()


def job_cache() -> Cache:
    if runtime.cache is None:
        raise RuntimeError("no cache configured for jobs in this process")
    return runtime.cache
