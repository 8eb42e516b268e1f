"""Reports people read: the Markdown/HTML document writer and the comparison report of a sweep (``radtl report``)."""
