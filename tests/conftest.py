"""Every test runs with the log redaction the service installs at start-up."""

from infra.redaction import install_redaction

install_redaction()
