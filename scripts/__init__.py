"""Deployment scripts: template rendering, template validation and the bootstrap."""
