"""Who runs a runbook when a CI job does: the CI system's own variables (issue 31, point 9).

Read from the job's environment, never from a file; each value is untrusted text (a branch name, a user name)
and is kept printable and short. Sources, each read for this:

- GitLab CI: ``GITLAB_CI`` "true", ``GITLAB_USER_LOGIN`` (the user the job runs for), ``CI_JOB_URL``,
  ``CI_PIPELINE_URL`` (docs.gitlab.com/ci/variables/predefined_variables).
- GitHub Actions: ``GITHUB_ACTIONS`` "true", ``GITHUB_ACTOR`` (``GITHUB_TRIGGERING_ACTOR`` on a re-run),
  the run's page ``$GITHUB_SERVER_URL/$GITHUB_REPOSITORY/actions/runs/$GITHUB_RUN_ID``
  (docs.github.com/en/actions/reference/variables-reference).
- Jenkins: ``JENKINS_URL`` and ``BUILD_URL`` (the build's page; set when the Jenkins URL is configured);
  ``BUILD_USER_ID`` only with the build-user-vars plugin, which sets it to "timer", "scmChange" and the like for
  automatic triggers (plugins.jenkins.io/build-user-vars-plugin).
"""

from __future__ import annotations

from collections.abc import Mapping

from .redact import printable

MAX = 300


def _clean(value: str | None) -> str | None:
    """No control characters, writable as UTF-8, at most MAX characters; None for nothing."""
    if value is None:
        return None
    # a byte the locale did not decode arrives as a lone surrogate (surrogateescape), which UTF-8 cannot write
    v = printable(value.strip().encode("utf-8", "backslashreplace").decode("utf-8"))[:MAX]
    return v or None


def _url(value: str | None) -> str | None:
    v = _clean(value)
    return v if v and v.startswith(("https://", "http://")) and " " not in v else None


def ci_job(environ: Mapping[str, str]) -> dict[str, str | None] | None:
    """The CI job this process runs in: system, user, job URL (and the pipeline's where there is one); None
    outside a CI system this knows."""
    if environ.get("GITLAB_CI") == "true":
        return {
            "system": "GitLab CI",
            "user": _clean(environ.get("GITLAB_USER_LOGIN")),
            "job_url": _url(environ.get("CI_JOB_URL")),
            "pipeline_url": _url(environ.get("CI_PIPELINE_URL")),
        }
    if environ.get("GITHUB_ACTIONS") == "true":
        server, repo, run_id = (environ.get(k) for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID"))
        attempt = environ.get("GITHUB_RUN_ATTEMPT")
        page = f"{server}/{repo}/actions/runs/{run_id}" if server and repo and run_id and run_id.isdigit() else None
        if page and attempt and attempt.isdigit() and attempt != "1":
            page += f"/attempts/{attempt}"
        return {
            "system": "GitHub Actions",
            "user": _clean(environ.get("GITHUB_TRIGGERING_ACTOR") or environ.get("GITHUB_ACTOR")),
            "job_url": _url(page),
            "pipeline_url": None,
        }
    if environ.get("JENKINS_URL") or (environ.get("BUILD_URL") and environ.get("JENKINS_HOME")):
        return {
            "system": "Jenkins",
            "user": _clean(environ.get("BUILD_USER_ID")),
            "job_url": _url(environ.get("BUILD_URL")),
            "pipeline_url": None,
        }
    return None


def operator_of(explicit: str | None, environ: Mapping[str, str], fallback: str) -> str:
    """The operator a run records: ``--operator``, else the CI job's user ("user via GitLab CI"), else the
    user who ran sudo, else the login."""
    if explicit:
        return explicit
    job = ci_job(environ)
    if job and job["user"]:
        return f"{job['user']} via {job['system']}"
    return environ.get("SUDO_USER") or environ.get("USER") or fallback
