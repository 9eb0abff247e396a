"""The decade's lessons as experiments anyone can rerun (``textdecade lab EXPERIMENT``).

:mod:`textdecade.lab.experiments` says what each experiment varies and which paper it
reproduces; :mod:`textdecade.lab.runner` runs its grid of ordinary engine runs on one
shared tokenizer and data; :mod:`textdecade.lab.report` and :mod:`textdecade.lab.figures`
write the table (mean ± std over seeds) and the pictures.
"""

from textdecade.lab.experiments import EXPERIMENTS, Experiment, Variant
from textdecade.lab.runner import LabSettings, run_lab

__all__ = ["EXPERIMENTS", "Experiment", "LabSettings", "Variant", "run_lab"]
