"""The streaming core: the life of one window (pipeline), how input drives it (drive), what it reports (status),
and its parts (buffer, scheduler, speakers, postprocess)."""
