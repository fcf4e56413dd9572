"""The appliance's processes: the supervisor (with the edge server inside it) and the pyannote nodes."""

import os

# NumPy's OpenBLAS would start a thread per core and spin them on every small matrix product (the
# Whisper filterbank, the session's cosines): on a box whose cores Whisper and the nodes already
# share, that costs 13 % more CPU per decode for nothing (docs/benchmarks.md). Set before NumPy loads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
