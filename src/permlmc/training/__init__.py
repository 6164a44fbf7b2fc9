"""Training with the paper's protocol: the loop (loop), a block of seeds stacked into one network (stacked),
a line of networks (line), resumable state (resume) and the stop of a diverged run (verdict)."""
