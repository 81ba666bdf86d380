"""The outputs `repro report` writes from cell records, one module each: the README's table
(readme), shields.io badges (badges), a JUnit summary (junit) and the HTML pages (pages); the OSV
ranges are harness.osv. harness.report writes them all.

Every field of a record is untrusted text (harness.results): each output keeps it inert in its own
format (Markdown cells, XML text, autoescaped HTML).
"""
