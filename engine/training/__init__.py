"""Training the two-tower ranker: the loop, progress labels, and the job shared by the command line and the page."""
