"""The operator and the CI job from a CI system's own variables (issue 31, point 9)."""

from hypothesis import given
from hypothesis import strategies as st

from omsup.ci_identity import ci_job, operator_of
from omsup.redact import _CONTROL

GITLAB = {
    "CI": "true",
    "GITLAB_CI": "true",
    "GITLAB_USER_LOGIN": "alice",
    "CI_JOB_URL": "https://gitlab.example.com/ops/oms/-/jobs/4711",
    "CI_PIPELINE_URL": "https://gitlab.example.com/ops/oms/-/pipelines/99",
}
GITHUB = {
    "CI": "true",
    "GITHUB_ACTIONS": "true",
    "GITHUB_ACTOR": "bob",
    "GITHUB_SERVER_URL": "https://github.com",
    "GITHUB_REPOSITORY": "ops/oms",
    "GITHUB_RUN_ID": "123456",
    "GITHUB_RUN_ATTEMPT": "2",
}
JENKINS = {
    "JENKINS_URL": "https://ci.example.com/",
    "BUILD_URL": "https://ci.example.com/job/oms-upgrade/15/",
    "BUILD_USER_ID": "carol",
}


def test_gitlab_github_and_jenkins_name_the_user_and_the_job():
    assert ci_job(GITLAB) == {
        "system": "GitLab CI",
        "user": "alice",
        "job_url": "https://gitlab.example.com/ops/oms/-/jobs/4711",
        "pipeline_url": "https://gitlab.example.com/ops/oms/-/pipelines/99",
    }
    gh = ci_job(GITHUB)
    assert gh and gh["user"] == "bob" and gh["job_url"] == "https://github.com/ops/oms/actions/runs/123456/attempts/2"
    assert ci_job({**GITHUB, "GITHUB_TRIGGERING_ACTOR": "dave"})["user"] == "dave"  # a re-run by another user
    jk = ci_job(JENKINS)
    assert jk and jk["user"] == "carol" and jk["job_url"] == JENKINS["BUILD_URL"]
    assert operator_of(None, GITLAB, "root") == "alice via GitLab CI"
    assert operator_of(None, JENKINS, "root") == "carol via Jenkins"


def test_outside_ci_or_without_a_user_the_login_is_the_operator_and_explicit_wins():
    assert ci_job({"CI": "true", "USER": "root"}) is None  # a bare CI=true names no system (this project's CI)
    assert operator_of(None, {"CI": "true", "USER": "root"}, "x") == "root"
    assert operator_of(None, {"SUDO_USER": "erin", "USER": "root"}, "x") == "erin"
    # Jenkins without the build-user-vars plugin: the job is named, the login stays the operator
    no_user = {k: v for k, v in JENKINS.items() if k != "BUILD_USER_ID"}
    assert ci_job(no_user)["user"] is None and operator_of(None, {**no_user, "USER": "jenkins"}, "x") == "jenkins"
    assert operator_of("frank", GITLAB, "x") == "frank"


def test_values_from_the_job_are_kept_printable_and_urls_only_when_they_are_urls():
    job = ci_job({**GITLAB, "GITLAB_USER_LOGIN": "ev\x1b[31mil\n", "CI_JOB_URL": "javascript:alert(1)"})
    assert job["user"] == "ev\\x1b[31mil" and job["job_url"] is None
    gh = ci_job({**GITHUB, "GITHUB_RUN_ID": "12; rm -rf /"})
    assert gh["job_url"] is None


@given(
    st.dictionaries(
        st.sampled_from(sorted({*GITLAB, *GITHUB, *JENKINS, "GITHUB_TRIGGERING_ACTOR"})),
        st.one_of(st.text(), st.sampled_from(["true", "1", "https://x.example/j/1"]), st.just("a\udcff")),
    )
)
def test_any_environment_gives_a_job_or_none_and_printable_text(environ):
    job = ci_job(environ)
    op = operator_of(None, environ, "fallback")
    assert isinstance(op, str)
    if job is not None:
        for v in job.values():
            assert v is None or (not _CONTROL.search(v) and len(v) <= 300 and v.encode("utf-8"))
