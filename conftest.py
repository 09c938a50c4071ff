"""Root conftest of the checkout.

The runbook plugin and its fixtures come from the installed package (the ``pytest11`` entry
point ``omsup = omsup.plugin``, see pyproject.toml), in this checkout as anywhere else; nothing is
registered here, so nothing is registered twice. `bash scripts/setup.sh` installs the package.
"""
