"""Quality of a run's output: `evaluate` scores records against gold ones, `review` builds the
self-contained page that shows every value beside its source."""
