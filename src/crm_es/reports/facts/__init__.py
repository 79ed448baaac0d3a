"""Loaders shared by the reports: fact rows of the read models as of a query, as Python
objects or numpy columns. Reports import these, never each other."""
