"""The decade in one command: every family trained on one corpus, scored on one suite.

:mod:`textdecade.decade.run` plans and trains the runs; :mod:`textdecade.decade.report`
scores them and writes the report with its pictures.
"""

from textdecade.decade.run import ORDER, DecadeSettings, run_decade

__all__ = ["ORDER", "DecadeSettings", "run_decade"]
