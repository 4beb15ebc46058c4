"""Research tools: formula ("gene") expressions, formula-based regression and reports.

``makerlab.research.formula`` parses and evaluates the expression grammar;
``makerlab.research.regression`` fits ordinary least squares on formula blocks
(``GeneticRegression``, compatible with the tutorial library's class of the same name);
``makerlab.research.report`` builds the research report. See ``docs/research.md``.
"""
