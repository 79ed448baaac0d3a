"""``python -m crm_es.app.cli`` runs the command line (used by crash tests and scripts)."""

from crm_es.app.cli import run

run()
