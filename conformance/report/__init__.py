"""Layer 7, reports: the Markdown summary, the HTML report and its templates, findings, the which-function view, the
cross-backend comparison, run-to-run diffs, timing and the speed tables."""
