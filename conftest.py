"""Root conftest: the runbook plugin and its fixtures."""

pytest_plugins = ["omsup.plugin", "fixtures.runbook"]
