"""``python -m crm_es.cli`` runs the command line (used by crash tests and scripts)."""

from crm_es.cli import run

run()
