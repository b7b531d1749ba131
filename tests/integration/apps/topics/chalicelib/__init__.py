"""This app's own library (not the project's ``chalicelib``)."""
