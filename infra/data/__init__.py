"""Video data: the sample type (sample.py), annotation readers (readers/), instance tracks files
(tracks.py), the synthetic STVG generator (synth.py, shapes.py) and frame sampling (video.py).
Conventions are in docs/data.md. Submodules are imported explicitly, so importing the sample type
never pulls in PyAV or numpy."""
