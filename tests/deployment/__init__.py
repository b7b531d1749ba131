"""Deployment: the packaged template, its policies, the deployment zip and the bootstrap."""
